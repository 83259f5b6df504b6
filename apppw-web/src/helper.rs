//! The front's side of the helper protocol (apppw-ctl's `web::protocol`): one connection to the
//! session socket per session, one JSON line each way, bounded in size and time. Passwords are
//! serialized into a buffer that is wiped once sent.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// Longest reply the front reads: a list of many codes with many limits is far beyond the 64 KiB
/// the helper takes in a request.
const MAX_REPLY: u64 = 1024 * 1024;
/// How long a reply may take: PAM's delay after a wrong password, a store under load.
const REPLY_LIMIT: Duration = Duration::from_secs(60);

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Request<'a> {
    SignIn {
        user: &'a str,
        password: &'a str,
        address: &'a str,
    },
    Answer(&'a str),
    Confirm(&'a str),
    Run(&'a [String]),
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Prompt {
        text: String,
        echo: bool,
        messages: Vec<String>,
    },
    SignedIn {
        user: String,
        services: Vec<String>,
        messages: Vec<String>,
    },
    Confirmed {
        messages: Vec<String>,
    },
    Refused {
        message: String,
        messages: Vec<String>,
    },
    Failed {
        message: String,
        confirm_again: bool,
    },
    Done {
        output: Value,
        notes: Vec<String>,
    },
}

/// The helper could not be reached or broke the protocol: the session is over.
#[derive(Debug)]
pub struct HelperGone(pub String);

pub struct Helper {
    stream: BufReader<UnixStream>,
    /// Set while an exchange is under way: if its future is dropped half-way (the connection's
    /// time limit), the reply may still come, and the next exchange would read it as its own.
    /// A helper left so is not used again.
    in_exchange: bool,
}

impl Helper {
    pub async fn connect(path: &Path) -> Result<Helper, HelperGone> {
        let stream = UnixStream::connect(path).await.map_err(|e| {
            HelperGone(format!(
                "cannot reach the session helper at {} ({e}); is apppw-web-session.socket running?",
                path.display()
            ))
        })?;
        Ok(Helper {
            stream: BufReader::new(stream),
            in_exchange: false,
        })
    }

    /// Sends `request` and reads the reply.
    pub async fn ask(&mut self, request: &Request<'_>) -> Result<Reply, HelperGone> {
        if self.in_exchange {
            return Err(HelperGone(
                "an earlier exchange with the session helper was cut off".into(),
            ));
        }
        self.in_exchange = true;
        let reply = self.exchange(request).await;
        // Not reached when the future is dropped: `in_exchange` stays set.
        self.in_exchange = false;
        reply
    }

    async fn exchange(&mut self, request: &Request<'_>) -> Result<Reply, HelperGone> {
        let mut line =
            Zeroizing::new(serde_json::to_vec(request).map_err(|e| HelperGone(e.to_string()))?);
        line.push(b'\n');
        let exchange = async {
            self.stream
                .get_mut()
                .write_all(&line)
                .await
                .map_err(|e| HelperGone(format!("the session helper went away ({e})")))?;
            self.receive().await
        };
        tokio::time::timeout(REPLY_LIMIT, exchange)
            .await
            .map_err(|_| HelperGone("the session helper did not answer in time".into()))?
    }

    async fn receive(&mut self) -> Result<Reply, HelperGone> {
        // The reply to `new` holds the code: wiped once parsed.
        let mut line = Zeroizing::new(Vec::new());
        let read = (&mut self.stream)
            .take(MAX_REPLY)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| HelperGone(format!("reading from the session helper failed ({e})")))?;
        if read == 0 || line.last() != Some(&b'\n') {
            return Err(HelperGone(
                "the session helper closed the session or sent an overlong line".into(),
            ));
        }
        serde_json::from_slice(&line)
            .map_err(|e| HelperGone(format!("the session helper's reply did not parse ({e})")))
    }
}
