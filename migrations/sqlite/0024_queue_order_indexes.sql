-- PostgreSQL only (its 0024 adds indexes for the queue's orders across several states, which
-- SQLite's planner serves from the state-led indexes of 0007). Kept so both folders number
-- their migrations alike.
SELECT 1;
