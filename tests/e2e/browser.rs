//! The room-management page in headless Chromium, driven over WebDriver: a user pastes a
//! token, creates a room through the form, sees it listed, adds a member; a chat-protocol
//! client then checks the room exists with that member.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`;
//! other paths through `CHATCAP_CHROMIUM` and `CHATCAP_CHROMEDRIVER`). Without them the
//! test prints a notice and passes, unless `CHATCAP_REQUIRE_BROWSER` is set (as
//! `scripts/test` does), so that CI never skips it silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chatcap_server::protocol::reply::{RoomRoles, Rooms};
use chatcap_server::protocol::{CategorySpec, Op};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::common::{category, free_port, join, ok_as, open_category, Backend, Cast};
use crate::web_rooms::Http;

/// How long the page may take to show something.
const PATIENCE: Duration = Duration::from_secs(20);

/// A program from an environment variable or a default path, if it exists.
fn program(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    path.is_file().then_some(path)
}

/// The chromium and chromedriver to use, or `None` (with a notice) to skip.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = program("CHATCAP_CHROMIUM", "/usr/bin/chromium");
    let driver = program("CHATCAP_CHROMEDRIVER", "/usr/bin/chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("CHATCAP_REQUIRE_BROWSER").is_some() => panic!(
            "CHATCAP_REQUIRE_BROWSER is set but chromium or chromedriver is missing \
             (apt-get install chromium chromium-driver)"
        ),
        _ => {
            eprintln!(
                "NOTICE: browser test skipped: chromium or chromedriver not found \
                 (apt-get install chromium chromium-driver; set CHATCAP_REQUIRE_BROWSER=1 \
                 to make this a failure)"
            );
            None
        }
    }
}

/// A chromedriver in its own process group; the group (chromedriver and the browsers it
/// started) is killed when this is dropped, also when the test fails.
struct Driver {
    child: std::process::Child,
    port: u16,
}

impl Driver {
    async fn start(program: &Path, log: &Path) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { child, port };
        let status = Http::new(([127, 0, 0, 1], port).into());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if status.try_raw("GET", "/status").await == Some(200) {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// A WebDriver session on headless Chromium with a fresh profile and no network use of
/// its own.
async fn session(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .expect("a WebDriver session")
}

/// Wait until the text of the element `css` contains `needle`; returns the text.
async fn wait_text(page: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(e) = page.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never showed {needle:?}; it shows {last:?}");
}

/// Type into an input.
async fn fill(page: &Client, css: &str, text: &str) {
    let e = page.find(Locator::Css(css)).await.expect(css);
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

/// Click a button.
async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

#[tokio::test]
async fn the_page_creates_a_room_and_adds_a_member() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let mut c = Cast::new(Backend::Sqlite).await;
    let spec = CategorySpec {
        creators: vec![c.alice],
        ..open_category("teams")
    };
    let teams = category(&mut c.a, spec).await;
    let work = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start(&chromedriver, &work.path().join("chromedriver.log")).await;
    let page = session(&driver, &chromium, &work.path().join("profile")).await;
    let base = format!("http://{}", c.srv.running.http_addr);

    page.goto(&format!("{base}/rooms"))
        .await
        .expect("open the page");
    // A forged token is refused, and the page asks again.
    fill(&page, "#token", "v1.1.9999999999.forged").await;
    click(&page, "#use-token").await;
    wait_text(&page, "#status", "Sign-in failed").await;

    fill(&page, "#token", &c.srv.token(c.alice)).await;
    click(&page, "#use-token").await;
    wait_text(&page, "#status", "Ready").await;
    wait_text(&page, "#new-category", "teams").await;

    fill(&page, "#new-name", "made-in-a-browser").await;
    page.find(Locator::Css("#new-category"))
        .await
        .expect("category select")
        .select_by_value(&teams.to_string())
        .await
        .expect("choose the category");
    click(&page, "#create-room").await;
    wait_text(&page, "#status", "Created room made-in-a-browser").await;
    wait_text(&page, "#rooms tbody", "made-in-a-browser").await;
    wait_text(&page, "#room-title", "made-in-a-browser").await;
    wait_text(&page, "#list-managers", "alice@t").await;

    fill(&page, "#add-user", "bob@t").await;
    click(&page, "#add-role").await;
    wait_text(&page, "#status", "Added bob@t").await;
    wait_text(&page, "#list-members", "bob@t").await;

    if let Some(path) = std::env::var_os("CHATCAP_SCREENSHOT") {
        let png = page.screenshot().await.expect("screenshot");
        std::fs::write(path, png).expect("write the screenshot");
    }
    page.close().await.expect("close the session");
    drop(driver);

    // Through the chat protocol: the room exists, bob is a member and may join it.
    let found: Rooms = ok_as(
        &mut c.a,
        Op::ListRooms {
            query: Some("made-in-a-browser".into()),
            category: Some(teams),
            mine: None,
            limit: None,
        },
    )
    .await;
    assert_eq!(found.rooms.len(), 1, "{found:?}");
    let room = found.rooms[0].id;
    let roles: RoomRoles = ok_as(&mut c.a, Op::RoomRoles { room }).await;
    let members: Vec<i64> = roles.members.iter().map(|u| u.id).collect();
    assert_eq!(members, vec![c.alice, c.bob]);
    let mut bob = c.srv.client(c.bob).await;
    assert_eq!(join(&mut bob, room).await.room.name, "made-in-a-browser");
    bob.close().await;
    c.stop().await;
}

/// Everything the report page shows in a browser: per figure its id, whether an `<svg>` is
/// drawn with a size, how many lines and texts it has; and the resources the page fetched.
const INSPECT_REPORT: &str = r#"
const figures = [...document.querySelectorAll('figure.plot')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {
    id: f.id,
    width: box.width,
    height: box.height,
    lines: svg ? svg.querySelectorAll('polyline, circle, path').length : 0,
    texts: svg ? [...svg.querySelectorAll('text')].map(t => t.textContent) : [],
  };
});
return {
  figures,
  fetched: performance.getEntriesByType('resource').map(r => r.name),
  slo_rows: document.querySelectorAll('table tr').length,
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_ends_with_a_report_that_shows_every_chart_and_fetches_nothing() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let out = work.path().join("quickstart");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatcap"))
        .arg("run")
        .arg(&scenario)
        .arg("-q")
        .arg("--out")
        .arg(&out)
        .current_dir(work.path())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(240), status)
        .await
        .expect("the quickstart ends within 4 minutes")
        .expect("chatcap runs");
    assert!(status.success(), "quickstart run: {status}");
    let page_file = out.join("report.html");
    assert!(page_file.is_file(), "the quickstart wrote no report.html");

    let driver = Driver::start(&chromedriver, &work.path().join("chromedriver.log")).await;
    let page = session(&driver, &chromium, &work.path().join("profile")).await;
    page.goto(&format!("file://{}", page_file.display()))
        .await
        .expect("open report.html");
    let seen = page
        .execute(INSPECT_REPORT, vec![])
        .await
        .expect("inspect the page");
    if let Some(path) = std::env::var_os("CHATCAP_SCREENSHOT") {
        let png = page.screenshot().await.expect("screenshot");
        std::fs::write(path, png).expect("write the screenshot");
    }
    page.close().await.expect("close the session");
    drop(driver);

    let figures = seen["figures"].as_array().expect("figures");
    assert!(figures.len() >= 14, "{seen}");
    for f in figures {
        let id = f["id"].as_str().unwrap_or_default();
        assert!(
            f["width"].as_f64().unwrap_or(0.0) > 300.0,
            "{id} is not drawn: {f}"
        );
        assert!(
            f["height"].as_f64().unwrap_or(0.0) > 100.0,
            "{id} is not drawn: {f}"
        );
        assert!(
            f["lines"].as_u64().unwrap_or(0) > 0,
            "{id} has no line: {f}"
        );
        let texts: Vec<&str> = f["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("seconds since") || t.contains("connections signed in")),
            "{id}: no x axis label in {texts:?}"
        );
        assert!(
            texts.len() >= 5,
            "{id}: title, axis labels and numbers: {texts:?}"
        );
    }
    assert_eq!(seen["fetched"], json!([]), "the page fetched something");
    assert!(seen["slo_rows"].as_u64().unwrap_or(0) > 3, "{seen}");
}
