//! A small DevTools-protocol client for the browser tests of tests/web.rs: Debian's chromium,
//! headless, one page, commands over a websocket, screenshots kept under target/web-artifacts.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Headless chromium driven over the DevTools protocol (one page).
pub struct Browser {
    child: Child,
    rt: tokio::runtime::Runtime,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    session: String,
    next: u64,
    _profile: tempfile::TempDir,
}

pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

impl Browser {
    pub fn launch(program: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1600,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut ws_url = None;
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(u) = line.split("DevTools listening on ").nth(1) {
                ws_url = Some(u.trim().to_string());
                break;
            }
        }
        let ws_url = ws_url.expect("chromium printed no DevTools address");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(ws_url.as_str()))
            .expect("connect to chromium");
        let mut b = Browser {
            child,
            rt,
            ws,
            session: String::new(),
            next: 0,
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let tid = target["targetId"].as_str().expect("targetId").to_string();
        let att = b.call(
            "Target.attachToTarget",
            json!({"targetId": tid, "flatten": true}),
            false,
        );
        b.session = att["sessionId"].as_str().expect("sessionId").to_string();
        b.call("Page.enable", json!({}), true);
        b
    }

    /// Sends a command (to the page's session if `page`) and returns its result.
    pub fn call(&mut self, method: &str, params: Value, page: bool) -> Value {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if page {
            msg["sessionId"] = json!(self.session);
        }
        let ws = &mut self.ws;
        self.rt.block_on(async {
            ws.send(Message::text(msg.to_string()))
                .await
                .expect("send to chromium");
            loop {
                let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
                    .await
                    .expect("chromium answers within a minute")
                    .expect("chromium's socket open")
                    .expect("a message");
                let Ok(text) = m.to_text() else { continue };
                let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                if v["id"] == json!(id) {
                    if let Some(e) = v.get("error") {
                        panic!("{method}: {e}");
                    }
                    return v["result"].clone();
                }
            }
        })
    }

    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            true,
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    pub fn wait_for(&mut self, expr: &str, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            let v = self.eval(expr);
            if !(v.is_null() || v == json!(false)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}), true);
        let png = base64_decode(r["data"].as_str().expect("png data"));
        let dir = artifacts();
        let p = dir.join(name);
        std::fs::write(&p, png).expect("write screenshot");
        p
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots are kept: target/web-artifacts.
pub fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let d = target.join("web-artifacts");
    std::fs::create_dir_all(&d).expect("artifacts dir");
    d
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for ch in clean.chunks(4) {
        let n = ch.iter().enumerate().fold(0u32, |acc, (i, &c)| {
            acc | (u32::from(val(c)) << (18 - 6 * i))
        });
        out.push((n >> 16) as u8);
        if ch.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if ch.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}
