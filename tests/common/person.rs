//! The person in the loop, played by a test: it reaches a headless Chromium through its
//! DevTools port, as a person would through an SSH tunnel and chrome://inspect, and drags the
//! fixture's slider with the mouse.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::input::{
    DispatchMouseEventParams, DispatchMouseEventType, MouseButton,
};
use chromiumoxide::{Browser, Page};
use futures_util::StreamExt as _;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The person's side: DevTools on the forwarded port, and the page whose URL contains `part`.
pub async fn connect(port: u16, part: &str) -> (Browser, Page) {
    let mut tries = 0;
    let (mut browser, mut handler) = loop {
        match Browser::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(b) => break b,
            Err(e) => {
                tries += 1;
                assert!(tries < 120, "no DevTools on port {port}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    for _ in 0..120 {
        let _ = browser.fetch_targets().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        for page in browser.pages().await.unwrap() {
            if page
                .url()
                .await
                .ok()
                .flatten()
                .is_some_and(|u| u.contains(part))
            {
                // The tab shows its URL before the document has loaded; a node found in the
                // document being replaced is gone by the time it is clicked.
                wait_loaded(&page, part).await;
                return (browser, page);
            }
        }
    }
    panic!("no page at {part}");
}

async fn wait_loaded(page: &Page, part: &str) {
    let check = format!(
        "document.readyState === 'complete' && location.href.includes({})",
        serde_json::to_string(part).unwrap()
    );
    for _ in 0..200 {
        let loaded = page
            .evaluate(check.as_str())
            .await
            .ok()
            .and_then(|v| v.into_value::<bool>().ok());
        if loaded == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page at {part} never finished loading");
}

/// As a person would: press on the knob, move it to the end of the track in steps, release.
pub async fn drag_slider(page: &Page) {
    // The page may still be loading when the person finds its tab: wait for the slider, as
    // they would.
    for _ in 0..100 {
        let ready = page
            .evaluate("document.getElementById('nc_1_n1z') !== null")
            .await
            .ok()
            .and_then(|v| v.into_value::<bool>().ok());
        if ready == Some(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let geometry = page
        .evaluate(
            "(() => { const k = document.getElementById('nc_1_n1z').getBoundingClientRect(); \
             const t = document.getElementById('nc_1_n1t').getBoundingClientRect(); \
             return [k.left + k.width / 2, k.top + k.height / 2, t.width - k.width]; })()",
        )
        .await
        .unwrap()
        .into_value::<[f64; 3]>()
        .unwrap();
    let [x, y, travel] = geometry;
    let mouse = |kind: DispatchMouseEventType, x: f64| {
        DispatchMouseEventParams::builder()
            .r#type(kind)
            .x(x)
            .y(y)
            .button(MouseButton::Left)
            .buttons(1)
            .click_count(1)
            .build()
            .unwrap()
    };
    page.execute(mouse(DispatchMouseEventType::MousePressed, x))
        .await
        .unwrap();
    let steps = 12;
    for i in 1..=steps {
        let to = x + travel * f64::from(i) / f64::from(steps) + 4.0;
        page.execute(mouse(DispatchMouseEventType::MouseMoved, to))
            .await
            .unwrap();
    }
    page.execute(mouse(
        DispatchMouseEventType::MouseReleased,
        x + travel + 4.0,
    ))
    .await
    .unwrap();
}
