//! `--timestamp T` of `consume`: milliseconds since the Unix epoch, or an RFC 3339 date-time
//! (`2024-05-01T12:00:00Z`, `2024-05-01 14:00:00.250+02:00`).
//!
//! Parsed by hand (a few dozen lines) rather than with a date crate: only this one fixed
//! format is accepted, and the conversion is the civil-from-days algorithm below.

/// Parses `text` into milliseconds since 1970-01-01T00:00:00Z (never negative: negative
/// timestamps are ListOffsets' special values).
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map_err(|_| format!("{text:?} is too large for a millisecond timestamp"));
    }
    let ms = parse_rfc3339(text).ok_or_else(|| {
        format!(
            "{text:?} is neither milliseconds since the epoch nor an RFC 3339 date-time \
             such as 2024-05-01T12:00:00Z"
        )
    })?;
    if ms < 0 {
        return Err(format!(
            "{text:?} is before 1970, which Kafka timestamps cannot express"
        ));
    }
    Ok(ms)
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM)` to epoch milliseconds.
/// Fractions beyond milliseconds are truncated; a leap second (:60) counts as the next
/// second, as Unix time has no place for it.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    let separators_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !separators_ok
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 || len > 9 {
            return None;
        }
        // First three digits, padded: ".5" is 500 ms, ".123456" is 123 ms.
        millis = fraction[..len]
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0, |n, d| n * 10 + i64::from(d - b'0'));
        rest = &fraction[len..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1000 + millis)
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, http://howardhinnant.github.io/date_algorithms.html).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds() {
        assert_eq!(parse_timestamp("0"), Ok(0));
        assert_eq!(parse_timestamp("1714564800000"), Ok(1_714_564_800_000));
        assert_eq!(parse_timestamp(" 42 "), Ok(42));
        assert!(parse_timestamp("99999999999999999999").is_err());
        assert!(
            parse_timestamp("-5").is_err(),
            "negative values are ListOffsets' specials"
        );
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn rfc3339() {
        for (text, ms) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01Z", 1_000),
            // `date -u -d 2024-05-01T12:00:00Z +%s` = 1714564800
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01t12:00:00z", 1_714_564_800_000),
            ("2024-05-01 12:00:00Z", 1_714_564_800_000),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800_000),
            ("2024-05-01T07:30:00-04:30", 1_714_564_800_000),
            ("2024-05-01T12:00:00.5Z", 1_714_564_800_500),
            ("2024-05-01T12:00:00.123456789Z", 1_714_564_800_123),
            // Leap days and the year-2000 rule.
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("2100-03-01T00:00:00Z", 4_107_542_400_000),
            // A leap second is the next second.
            ("2016-12-31T23:59:60Z", 1_483_228_800_000),
        ] {
            assert_eq!(parse_timestamp(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for text in [
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00Z",
            "2024/05/01T12:00:00Z",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1234567890Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert!(parse_timestamp(text).is_err(), "{text} should be refused");
        }
    }
}
