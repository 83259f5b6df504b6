//! Durations as people type them on the command line and in the config file: `90d`, `12h`,
//! `2w`, `30m`, `45s`. A bare number is refused: `90` could mean anything.
#![forbid(unsafe_code)]

/// Parses a duration into seconds. The error names what was expected.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h, d or w (e.g. 90d)"))?;
    let (digits, unit) = text.split_at(split);
    let count: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90d, 12h or 2w"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?}: use s, m, h, d or w"
            ));
        }
    };
    count
        .checked_mul(unit_secs)
        .filter(|secs| *secs > 0 && *secs <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("{text:?} is out of range (1s to 100 years)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert_eq!(parse_duration(" 30m "), Ok(1800));
        assert_eq!(parse_duration("45s"), Ok(45));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "90",
            "d",
            "-1d",
            "0d",
            "1y",
            "1.5d",
            "99999999999999999999d",
            "1000000w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
