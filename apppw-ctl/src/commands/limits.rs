//! The limit flags `new` and `edit` share: `--service`, `--from`, `--expires`.
#![forbid(unsafe_code)]

use apppw_core::scope::{Network, Scope, parse_expiry, parse_service};
use apppw_core::{CodeInfo, timefmt};
use clap::Args;

use crate::context::Context;
use crate::error::CtlError;

/// Most `--service` or `--from` values one code takes.
const MAX_LISTED: usize = 32;

#[derive(Args, Default)]
pub struct LimitArgs {
    /// Only for this PAM service (repeat for several), e.g. --service imap --service smtp
    #[arg(long = "service", value_name = "SERVICE", value_parser = parse_service)]
    pub services: Vec<String>,
    /// Only from this network (repeat for several), e.g. --from 192.0.2.0/24 --from 2001:db8::/48
    #[arg(long = "from", value_name = "NETWORK", value_parser = str::parse::<Network>)]
    pub networks: Vec<Network>,
    /// Stop working then: a duration (90d) or a date (2027-01-31, at 00:00 UTC)
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
}

impl LimitArgs {
    /// Applies these flags on top of `base`: given lists replace the old ones.
    pub fn apply(&self, mut base: Scope, now: i64) -> Result<Scope, CtlError> {
        // Bounded like every row a user can write (see max_changes_per_day).
        if self.services.len() > MAX_LISTED || self.networks.len() > MAX_LISTED {
            return Err(CtlError::TooManyLimits { max: MAX_LISTED });
        }
        if !self.services.is_empty() {
            base.services = self.services.clone();
        }
        if !self.networks.is_empty() {
            base.networks = self.networks.clone();
        }
        if let Some(when) = &self.expires {
            base.expires = Some(parse_expiry(when, now).map_err(CtlError::BadExpiry)?);
        }
        Ok(base)
    }
}

/// Settles a requested scope against the site policy (allowed services, lifetime cap).
pub fn settle(ctx: &Context, scope: Scope, created: i64) -> Result<Scope, CtlError> {
    Ok(ctx.policy.settle_scope(scope, created)?)
}

/// `imap,smtp from 192.0.2.0/24 until 2027-01-31 00:00 UTC`, or `-` for a code without limits.
pub fn describe(code: &CodeInfo) -> String {
    let scope = &code.scope;
    let mut parts = Vec::new();
    if !scope.services.is_empty() {
        parts.push(scope.services.join(","));
    }
    if !scope.networks.is_empty() {
        let nets: Vec<String> = scope.networks.iter().map(ToString::to_string).collect();
        parts.push(format!("from {}", nets.join(",")));
    }
    if let Some(at) = scope.expires {
        parts.push(format!("until {}", timefmt::human(at)));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}
