//! apppw-web: the self-service page for app passwords (docs/WEB.md, apppw-web(8)). This process
//! faces the network through the site's reverse proxy and runs as its own account with no access
//! to the store or /etc/shadow; each signed-in session talks to a root helper
//! (`apppw-ctl web-session`) that signs the user in through PAM and acts only for them.
//!
//! `main` reads web.conf, takes the listening socket (from systemd, or binds `listen`), and
//! serves HTTP/1 with hyper's limits on headers and time; `web.rs` has the routes.
#![deny(unsafe_code)]

mod config;
mod helper;
mod listen_fd;
mod pages;
mod profile;
mod sessions;
mod throttle;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

use crate::config::{DEFAULT_CONFIG_PATH, WebConfig};

/// Most connections served at once (nginx keeps a few per worker).
const MAX_CONNECTIONS: usize = 256;
/// A request's headers must arrive within this.
const HEADER_LIMIT: Duration = Duration::from_secs(10);
/// A connection lives at most this long, however busy (it covers slow bodies too).
const CONNECTION_LIMIT: Duration = Duration::from_secs(120);
/// Largest request head hyper buffers (headers included).
const MAX_HEAD: usize = 16 * 1024;
/// Most header lines in a request.
const MAX_HEADERS: usize = 64;

#[derive(Parser)]
#[command(
    name = "apppw-web",
    version,
    about = "Self-service web page for app passwords"
)]
struct Cli {
    /// Configuration file
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if nix::unistd::geteuid().is_root() {
        eprintln!(
            "apppw-web: refusing to run as root: it runs as its own account (apppw-web), and only its helper is privileged"
        );
        return ExitCode::from(2);
    }
    let config = match WebConfig::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("apppw-web: {e}");
            return ExitCode::from(2);
        }
    };
    let passed = listen_fd::take();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("apppw-web: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config, passed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apppw-web: {e}");
            ExitCode::from(1)
        }
    }
}

fn bind(
    config: &WebConfig,
    passed: Option<std::os::unix::net::UnixListener>,
) -> Result<UnixListener, String> {
    if let Some(listener) = passed {
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        return UnixListener::from_std(listener).map_err(|e| e.to_string());
    }
    let path = &config.listen;
    // A socket left by an earlier run would make bind fail; anything else there is kept.
    if std::fs::symlink_metadata(path)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
    {
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    // The proxy must be able to connect; who may is the directory's business (the unit's
    // RuntimeDirectory, or the site's).
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .map_err(|e| format!("cannot open {} to the proxy: {e}", path.display()))?;
    Ok(listener)
}

async fn serve(
    config: WebConfig,
    passed: Option<std::os::unix::net::UnixListener>,
) -> Result<(), String> {
    let listener = bind(&config, passed)?;
    let app = Arc::new(web::App {
        config,
        sessions: sessions::Sessions::default(),
        throttle: throttle::Throttle::default(),
    });
    let router = web::router(app.clone());
    let sweeper = app.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            sweeper.sessions.sweep();
        }
    });
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("apppw-web: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Beyond the limit a connection is closed at once rather than queued.
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_LIMIT)
                .max_buf_size(MAX_HEAD)
                .max_headers(MAX_HEADERS);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIMIT, connection).await;
            drop(permit);
        });
    }
}
