//! pam_apppw: accepts a user's active app password as their password.
//!
//! This crate is thin glue. `entry` is the only place with `unsafe` (the C entry points pamsm
//! generates) and wraps every call in a panic guard; `options` parses the module arguments;
//! `auth` gathers the PAM items and hands them to `apppw_core::login`, where the decision is made;
//! `kept_store` keeps one PostgreSQL connection per auth process between logins; `outcome` is the
//! one place that turns results into PAM codes and log lines.
#![deny(unsafe_code)]

mod auth;
mod entry;
mod kept_store;
mod options;
mod outcome;
mod password;
