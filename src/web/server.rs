//! The server: binds, checks the token on every request, serves the embedded page and the
//! API, and runs until Ctrl-C.
//!
//! Routes (all behind the token):
//! - `/` the page, `/assets/*` its script and style;
//! - `/api/topology` the drawing and its graph; `/ws/live` status and packet frames;
//! - `/api/step/live`, `/api/step/run?dir=D` recordings for the step mode; `/api/runs`;
//! - `/api/experiments`, `/api/experiments/run?name=N` (POST), `/api/experiments/job`,
//!   `/api/run/file?dir=D&name=F`, `/api/run/figures?dir=D`;
//! - `/ws/term?node=N` a terminal in a node.

use super::auth::{COOKIE, Token};
use super::events::LinkMap;
use super::experiments::Jobs;
use super::live::LiveHub;
use super::topo::{LabRef, TopologyView};
use crate::error::{Error, Result};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, watch};

const INDEX_HTML: &str = include_str!("../../assets/web/index.html");
const APP_JS: &str = include_str!("../../assets/web/app.js");
const TERM_JS: &str = include_str!("../../assets/web/term.js");
const APP_CSS: &str = include_str!("../../assets/web/app.css");

/// How `tcplab web` runs.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Address and port to listen on (port 0: any free one).
    pub listen: SocketAddr,
    /// The lab, as the command line named it.
    pub lab: LabRef,
    /// The token (a random one when `None`).
    pub token: Option<Token>,
    /// The tcplab program the terminals run (`tcplab exec NODE bash`).
    pub program: PathBuf,
}

struct Shared {
    token: Token,
    lab: LabRef,
    lab_name: String,
    nodes: Vec<String>,
    view: TopologyView,
    links: LinkMap,
    live: Arc<LiveHub>,
    status: watch::Receiver<Arc<str>>,
    jobs: Jobs,
    program: PathBuf,
}

type St = State<Arc<Shared>>;

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    status_tx: watch::Sender<Arc<str>>,
}

impl Server {
    /// Resolves the lab, binds the address and starts the live capture (nodes that are up).
    pub async fn bind(opts: WebOptions) -> Result<Server> {
        let ctx = opts.lab.resolve()?;
        let (view, links) = super::topo::view_of(&ctx);
        let nodes: Vec<String> = ctx.topology.nodes.iter().map(|n| n.name.clone()).collect();
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| Error::io(format!("listening on {}", opts.listen), e))?;
        let token = match opts.token {
            Some(t) => t,
            None => Token::generate()?,
        };
        let live = if crate::sys::is_root() {
            LiveHub::start(ctx.lab.clone(), nodes.clone(), links.clone())
                .map_err(|e| Error::io("starting the live capture", e))?
        } else {
            LiveHub::start(ctx.lab.clone(), Vec::new(), links.clone())
                .map_err(|e| Error::io("starting the live view", e))?
        };
        let (status_tx, status) = watch::channel::<Arc<str>>(Arc::from("{\"up\":false}"));
        let shared = Arc::new(Shared {
            token,
            lab: opts.lab,
            lab_name: ctx.lab.clone(),
            nodes,
            view,
            links,
            live,
            status,
            jobs: Jobs::default(),
            program: opts.program,
        });
        Ok(Server {
            listener,
            shared,
            status_tx,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e))
    }

    /// The URL to open, token included.
    pub fn url(&self) -> Result<String> {
        let a = self.local_addr()?;
        let host = if a.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            a.ip().to_string()
        };
        let host = if a.is_ipv6() && !a.ip().is_unspecified() {
            format!("[{host}]")
        } else {
            host
        };
        Ok(format!(
            "http://{host}:{}/?token={}",
            a.port(),
            self.shared.token.as_str()
        ))
    }

    /// Whether it listens on more than this machine's loopback.
    pub fn exposed(&self) -> bool {
        self.local_addr().is_ok_and(|a| !a.ip().is_loopback())
    }

    /// Serves until `shutdown` completes (Ctrl-C, for the command).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let poller = super::topo::spawn_status_poller(
            self.shared.lab.clone(),
            self.status_tx,
            self.shared.live.stop.clone(),
        )
        .map_err(|e| Error::io("starting the status poller", e))?;
        let app = routes(self.shared.clone());
        let res = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::io("serving the page", e));
        self.shared.live.stop.store(true, Ordering::Relaxed);
        let _ = poller.join();
        res
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { html(INDEX_HTML) }))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route(
            "/assets/term.js",
            get(|| async { asset("text/javascript", TERM_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css", APP_CSS) }),
        )
        .route("/api/topology", get(topology))
        .route("/api/step/live", get(step_live))
        .route("/api/step/run", get(step_run))
        .route("/api/runs", get(runs))
        .route("/api/experiments", get(experiments))
        .route("/api/experiments/run", post(experiment_run))
        .route("/api/experiments/job", get(experiment_job))
        .route("/api/run/file", get(run_file))
        .route("/api/run/figures", get(run_figures))
        .route("/ws/live", get(ws_live))
        .route("/ws/term", get(ws_term))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        .with_state(shared)
}

/// Refuses (401) a request without the token; a page loaded with `?token=` gets the cookie.
async fn require_token(State(s): St, req: Request, next: Next) -> Response {
    let h = req.headers();
    let text = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    let query = req.uri().query();
    if !s
        .token
        .admits(query, text(header::COOKIE), text(header::AUTHORIZATION))
    {
        return (
            StatusCode::UNAUTHORIZED,
            "tcplab web: open the URL tcplab printed, token included\n",
        )
            .into_response();
    }
    // A page of another site may not drive this one (cross-site websockets and posts).
    if let (Some(origin), Some(host)) = (text(header::ORIGIN), text(header::HOST))
        && origin.split_once("://").map(|(_, h)| h) != Some(host)
    {
        return (
            StatusCode::FORBIDDEN,
            "tcplab web: requests from another site's page are refused\n",
        )
            .into_response();
    }
    let from_query = query.is_some_and(|q| q.contains("token="));
    let mut resp = next.run(req).await;
    if from_query {
        let cookie = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            s.token.as_str()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

fn html(body: &'static str) -> Response {
    asset("text/html; charset=utf-8", body)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => refuse(Error::Other(e.to_string())),
    }
}

fn refuse(e: Error) -> Response {
    let code = match e {
        Error::Usage(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, format!("{e}\n")).into_response()
}

async fn topology(State(s): St) -> Response {
    json(&s.view)
}

async fn step_live(State(s): St) -> Response {
    let events: Vec<_> = {
        let r = s.live.recent.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().cloned().collect()
    };
    json(&super::step::from_events(events))
}

#[derive(Deserialize)]
struct DirQuery {
    dir: String,
    name: Option<String>,
}

async fn step_run(State(s): St, Query(q): Query<DirQuery>) -> Response {
    let s2 = s.clone();
    let res = tokio::task::spawn_blocking(move || {
        super::step::load_run_dir(Path::new(&q.dir), &s2.nodes, &s2.links)
    })
    .await;
    match res {
        Ok(Ok(rec)) => json(&rec),
        Ok(Err(e)) => refuse(e),
        Err(e) => refuse(Error::Other(e.to_string())),
    }
}

async fn runs(State(s): St) -> Response {
    json(&super::experiments::runs(&s.lab_name))
}

async fn experiments() -> Response {
    match super::experiments::catalogue() {
        Ok(c) => json(&c),
        Err(e) => refuse(e),
    }
}

#[derive(Deserialize)]
struct NameQuery {
    name: String,
}

async fn experiment_run(State(s): St, Query(q): Query<NameQuery>) -> Response {
    match s.jobs.start(&s.lab, &q.name) {
        Ok(()) => json(&s.jobs.snapshot()),
        Err(e) => refuse(e),
    }
}

async fn experiment_job(State(s): St) -> Response {
    json(&s.jobs.snapshot())
}

async fn run_file(Query(q): Query<DirQuery>) -> Response {
    let name = q.name.unwrap_or_default();
    match super::experiments::run_file(Path::new(&q.dir), &name) {
        Ok((kind, bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(e) => refuse(e),
    }
}

async fn run_figures(Query(q): Query<DirQuery>) -> Response {
    json(&super::experiments::figures(Path::new(&q.dir)))
}

async fn ws_live(State(s): St, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| live_session(socket, s))
}

/// Sends the status now and whenever it changes, and every frame of packets; a page that
/// reads too slowly skips frames (it is told how many).
async fn live_session(mut socket: WebSocket, s: Arc<Shared>) {
    let mut status = s.status.clone();
    let mut frames = s.live.frames.subscribe();
    let now = status.borrow_and_update().clone();
    let first = format!("{{\"type\":\"status\",\"data\":{now}}}");
    if socket.send(Message::Text(first.into())).await.is_err() {
        return;
    }
    loop {
        let msg = tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let st = status.borrow_and_update().clone();
                format!("{{\"type\":\"status\",\"data\":{st}}}")
            }
            f = frames.recv() => match f {
                Ok(f) => f.to_string(),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    format!("{{\"type\":\"skipped\",\"frames\":{n}}}")
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => continue,
                _ => break,
            },
        };
        if socket.send(Message::Text(msg.into())).await.is_err() {
            break;
        }
    }
}

#[derive(Deserialize)]
struct NodeQuery {
    node: String,
}

async fn ws_term(State(s): St, Query(q): Query<NodeQuery>, ws: WebSocketUpgrade) -> Response {
    if !s.nodes.contains(&q.node) {
        return refuse(Error::Usage(format!(
            "lab '{}' has no node '{}'",
            s.lab_name, q.node
        )));
    }
    let mut argv = vec![s.program.display().to_string()];
    if let Some(t) = &s.lab.topology {
        argv.push("--topology".into());
        argv.push(t.display().to_string());
    }
    argv.extend(["--lab".into(), s.lab_name.clone(), "exec".into(), q.node]);
    argv.extend(["bash".into(), "-i".into()]);
    ws.on_upgrade(move |socket| super::terminal::session(socket, argv))
}
