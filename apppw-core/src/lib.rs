//! apppw's core: everything the PAM module and the CLI share. No PAM, no terminal, no clock and
//! no randomness in here: callers pass time, random generators and paths in, so tests control them.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod code;
pub mod config;
pub mod duration;
pub mod error;
pub mod hash;
pub mod label;
pub mod login;
pub mod mint;
pub mod module_options;
pub mod policy;
pub mod postgres_tls;
pub mod schema;
pub mod scope;
pub mod secure_path;
pub mod store;
pub mod store_config;
pub mod timefmt;

pub use code::AppPassword;
pub use error::Error;
pub use label::{Label, escape_text, log_value};
pub use policy::Policy;
pub use store::{
    Access, Changer, CodeInfo, CodeRef, DEFAULT_STORE_PATH, Edit, Event, EventsAbout, LastUse,
    Owner, RevokeScope, Store,
};
