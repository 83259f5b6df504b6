//! `apppw-ctl migrate --to STORE` (root only): copies every row of the store apppw-ctl uses (codes
//! with their hashes, labels, limits, last use and revoked rows; the event trail; the use
//! history) into an empty store, usually from the SQLite file into a PostgreSQL database shared
//! by several hosts. Ids are kept, so users keep every code they had and the trail still points
//! at them. The copy is one transaction; it is then read back and compared with what was read,
//! row by row, and only then reported. The old store is left as it was: switching store.conf
//! over is the administrator's step.
#![forbid(unsafe_code)]

use std::path::Path;

use apppw_core::store::{PgStore, PgTarget, StoreRows, StoreTarget};
use apppw_core::store_config::read_secret_url;
use apppw_core::{Access, Error, Store};
use clap::Args;
use serde::Serialize;

use super::open_store;
use crate::audit_log;
use crate::context::Context;
use crate::error::CtlError;

#[derive(Args)]
pub struct MigrateArgs {
    /// Where to copy the store: `sqlite:/PATH` (a new file), or a file only root reads holding a
    /// PostgreSQL superuser's postgresql:// URL (`-`: read it from stdin). The URL is never
    /// taken from the command line, which other users can read.
    #[arg(long, value_name = "STORE")]
    pub to: String,
}

#[derive(Serialize)]
struct MigratedView<'a> {
    to: &'a str,
    codes: usize,
    active: usize,
    events: usize,
    uses: usize,
}

pub fn run(ctx: &Context, args: &MigrateArgs) -> Result<(), CtlError> {
    ctx.require_root("migrate")?;
    let to = target(&args.to)?;
    let rows = open_store(ctx, false)?.export()?;
    let (mut target, location) = match &to {
        StoreTarget::Sqlite(path) => {
            let store = Store::open(
                path,
                Access::Manage {
                    create: true,
                    upgrade: true,
                },
            )?;
            (store, path.display().to_string())
        }
        StoreTarget::Postgres(admin) => {
            // Creates the roles and schema if they are missing; an existing store is checked.
            PgStore::initialize(admin)?;
            let store = PgStore::open_as_owner(admin)?;
            let location = store.location().to_owned();
            (Store::Postgres(store), location)
        }
    };
    target.import(&rows)?;
    let copied = target.export()?;
    if let Some(what) = first_difference(&rows, &copied) {
        return Err(Error::MigrateMismatch {
            store: location,
            what,
        }
        .into());
    }
    let active = rows.codes.iter().filter(|c| c.revoked.is_none()).count();
    audit_log::record_text(
        ctx,
        &format!(
            "migrated {} app passwords ({active} active), {} events and {} uses to {location}",
            rows.codes.len(),
            rows.events.len(),
            rows.uses.len()
        ),
    );
    if ctx.out.json() {
        return ctx.out.value(&MigratedView {
            to: &location,
            codes: rows.codes.len(),
            active,
            events: rows.events.len(),
            uses: rows.uses.len(),
        });
    }
    ctx.out.text(&format!(
        "Copied {} app passwords ({active} active, every hash, label, limit and last use), {} events and {} recorded uses to {location}, and read them back: every row is as it was.\n\
         The old store is unchanged. To switch, point login_store and manage_store in /etc/apppw/store.conf at the new store.\n",
        rows.codes.len(),
        rows.events.len(),
        rows.uses.len()
    ))
}

/// `--to`: `sqlite:/PATH`, or a file (or `-`, stdin) holding a postgresql:// URL.
fn target(given: &str) -> Result<StoreTarget, CtlError> {
    if given.starts_with("sqlite:") {
        return Ok(StoreTarget::parse(given, false)?);
    }
    if given.starts_with("postgresql://") || given.starts_with("postgres://") {
        return Err(CtlError::Setup {
            action: "reading --to".into(),
            reason: "a URL on the command line can be read by every user (and may hold a password): put it in a file only root can read and give that file, or pipe it with --to -".into(),
        });
    }
    let text = read_secret_url(Path::new(given))?;
    let admin = PgTarget::parse(text.trim(), false)?;
    Ok(StoreTarget::Postgres(Box::new(admin)))
}

/// Where `copied` differs from `read`, if it does: the first differing row, by table and id.
fn first_difference(read: &StoreRows, copied: &StoreRows) -> Option<String> {
    if read.codes.len() != copied.codes.len()
        || read.events.len() != copied.events.len()
        || read.uses.len() != copied.uses.len()
    {
        return Some(format!(
            "{}/{}/{} rows read, {}/{}/{} found (codes/events/uses)",
            read.codes.len(),
            read.events.len(),
            read.uses.len(),
            copied.codes.len(),
            copied.events.len(),
            copied.uses.len()
        ));
    }
    if let Some((a, _)) = read.codes.iter().zip(&copied.codes).find(|(a, b)| a != b) {
        return Some(format!("app password {}", a.id));
    }
    if let Some((a, _)) = read.events.iter().zip(&copied.events).find(|(a, b)| a != b) {
        return Some(format!("event {}", a.event.id));
    }
    if let Some((a, _)) = read.uses.iter().zip(&copied.uses).find(|(a, b)| a != b) {
        return Some(format!("a recorded use of app password {}", a.code_id));
    }
    None
}
