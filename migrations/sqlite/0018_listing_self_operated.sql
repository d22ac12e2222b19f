-- Whether the page marked the shop as the platform's own (京东自营, 天猫超市, sold by Amazon).
ALTER TABLE listings ADD COLUMN self_operated INTEGER NOT NULL DEFAULT 0;
