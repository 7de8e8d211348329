//! What `consume` prints and where it starts: `--offset` positions (`earliest`, `latest`, an
//! offset, `-N` from the end, `@` a time), `--format` templates (kcat's `-f` and rpk's
//! `--format` letters) and `--json` lines.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use cairn_protocol::kafka_protocol::records::Record;

use super::timestamp::parse_timestamp;

/// Where reading starts in each chosen partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartAt {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records written from now on.
    Latest,
    /// This offset (it must lie between log start and high watermark).
    Offset(i64),
    /// This many records before the high watermark (never before the log start).
    FromEnd(i64),
    /// The first record stamped at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Parses `--offset`: `earliest`/`beginning`/`start`, `latest`/`end`, `N`, `-N`, or `@T`
/// where T is milliseconds, RFC 3339, or a time ago such as `-1h`, `-30m`, `-10s`, `-2d`.
pub(crate) fn parse_start(text: &str) -> Result<StartAt, String> {
    let text = text.trim();
    match text {
        "earliest" | "beginning" | "start" | "oldest" => return Ok(StartAt::Earliest),
        "latest" | "end" | "newest" => return Ok(StartAt::Latest),
        _ => {}
    }
    if let Some(when) = text.strip_prefix('@') {
        return match when.strip_prefix('-') {
            Some(ago) => {
                let ago = parse_duration_ms(ago).ok_or_else(|| {
                    format!("{text:?}: expected a time ago such as @-90s, @-15m, @-1h or @-2d")
                })?;
                Ok(StartAt::Timestamp(now_ms().saturating_sub(ago).max(0)))
            }
            None => parse_timestamp(when).map(StartAt::Timestamp),
        };
    }
    if let Some(back) = text.strip_prefix('-') {
        return match back.parse::<i64>() {
            Ok(n) if n > 0 => Ok(StartAt::FromEnd(n)),
            _ => Err(format!(
                "{text:?}: expected -N with N a positive number of records"
            )),
        };
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(StartAt::Offset(n)),
        _ => Err(format!(
            "{text:?} is not a start position: expected earliest, latest, an offset N, -N \
             (N records before the end), or @TIME (@1714564800000, @2024-05-01T12:00:00Z, @-1h)"
        )),
    }
}

/// `90s`, `15m`, `1h`, `2d` (or plain milliseconds, `500ms`) in milliseconds.
fn parse_duration_ms(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One piece of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(Vec<u8>),
    Key,
    Value,
    KeyLength,
    ValueLength,
    Topic,
    Partition,
    Offset,
    Timestamp,
    Headers,
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Printer {
    /// `value`, or `key SEP value`, and a newline.
    Plain { key_sep: Option<Vec<u8>> },
    /// A `--format` template.
    Format(Vec<Piece>),
    /// One JSON object per line.
    Json,
}

/// Parses a `--format` template. `%k` key, `%v` (or kcat's `%s`) value, `%K`/`%V` (`%S`)
/// their lengths in bytes (-1 for null), `%t` topic, `%p` partition, `%o` offset, `%T` (or
/// rpk's `%d`) timestamp in ms, `%h` headers as `k=v` joined by commas, `%%` a percent
/// sign; `\n`, `\t`, `\r`, `\\` escapes. Nothing is added at the end: put `\n` there.
pub(crate) fn parse_format(template: &str) -> Result<Printer, String> {
    let mut pieces = Vec::new();
    let mut text = Vec::new();
    let mut chars = template.chars();
    let flush = |text: &mut Vec<u8>, pieces: &mut Vec<Piece>| {
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(text)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let piece = match chars.next() {
                    Some('k') => Piece::Key,
                    Some('v' | 's') => Piece::Value,
                    Some('K') => Piece::KeyLength,
                    Some('V' | 'S') => Piece::ValueLength,
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('T' | 'd') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('%') => {
                        text.push(b'%');
                        continue;
                    }
                    Some(other) => {
                        return Err(format!(
                            "unknown format directive %{other} (known: %k %v %s %K %V %S %t %p \
                             %o %T %d %h %%)"
                        ))
                    }
                    None => return Err("the format ends in a lone %".to_string()),
                };
                flush(&mut text, &mut pieces);
                pieces.push(piece);
            }
            '\\' => match chars.next() {
                Some('n') => text.push(b'\n'),
                Some('t') => text.push(b'\t'),
                Some('r') => text.push(b'\r'),
                Some('\\') => text.push(b'\\'),
                Some(other) => {
                    return Err(format!(
                        "unknown escape \\{other} (known: \\n \\t \\r \\\\)"
                    ))
                }
                None => return Err("the format ends in a lone \\".to_string()),
            },
            c => {
                let mut buf = [0; 4];
                text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    flush(&mut text, &mut pieces);
    Ok(Printer::Format(pieces))
}

fn length(bytes: Option<&bytes::Bytes>) -> i64 {
    bytes.map_or(-1, |b| b.len() as i64)
}

/// A key, value or header as JSON: a string when it is UTF-8, else base64 with `base64`
/// set; null stays null.
fn json_bytes(bytes: Option<&bytes::Bytes>) -> (serde_json::Value, bool) {
    match bytes {
        None => (serde_json::Value::Null, false),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (serde_json::Value::String(s.to_string()), false),
            Err(_) => (
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
                true,
            ),
        },
    }
}

impl Printer {
    /// Writes `record` of `topic`/`partition`.
    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        topic: &str,
        partition: i32,
        record: &Record,
    ) -> std::io::Result<()> {
        match self {
            Printer::Plain { key_sep } => {
                if let Some(sep) = key_sep {
                    if let Some(key) = &record.key {
                        out.write_all(String::from_utf8_lossy(key).as_bytes())?;
                    }
                    out.write_all(sep)?;
                }
                if let Some(value) = &record.value {
                    out.write_all(String::from_utf8_lossy(value).as_bytes())?;
                }
                out.write_all(b"\n")
            }
            Printer::Format(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.write_all(t)?,
                        Piece::Key => out.write_all(record.key.as_deref().unwrap_or(b""))?,
                        Piece::Value => out.write_all(record.value.as_deref().unwrap_or(b""))?,
                        Piece::KeyLength => write!(out, "{}", length(record.key.as_ref()))?,
                        Piece::ValueLength => write!(out, "{}", length(record.value.as_ref()))?,
                        Piece::Topic => out.write_all(topic.as_bytes())?,
                        Piece::Partition => write!(out, "{partition}")?,
                        Piece::Offset => write!(out, "{}", record.offset)?,
                        Piece::Timestamp => write!(out, "{}", record.timestamp)?,
                        Piece::Headers => {
                            for (i, (k, v)) in record.headers.iter().enumerate() {
                                if i > 0 {
                                    out.write_all(b",")?;
                                }
                                out.write_all(k.as_bytes())?;
                                out.write_all(b"=")?;
                                out.write_all(v.as_deref().unwrap_or(b""))?;
                            }
                        }
                    }
                }
                Ok(())
            }
            Printer::Json => {
                let mut object = serde_json::Map::new();
                object.insert("topic".into(), topic.into());
                object.insert("partition".into(), partition.into());
                object.insert("offset".into(), record.offset.into());
                object.insert("timestamp".into(), record.timestamp.into());
                let (key, key_base64) = json_bytes(record.key.as_ref());
                object.insert("key".into(), key);
                if key_base64 {
                    object.insert("key_base64".into(), true.into());
                }
                let (value, value_base64) = json_bytes(record.value.as_ref());
                object.insert("value".into(), value);
                if value_base64 {
                    object.insert("value_base64".into(), true.into());
                }
                let headers: Vec<serde_json::Value> = record
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let (value, base64) = json_bytes(v.as_ref());
                        let mut h = serde_json::Map::new();
                        h.insert("key".into(), k.as_str().into());
                        h.insert("value".into(), value);
                        if base64 {
                            h.insert("value_base64".into(), true.into());
                        }
                        serde_json::Value::Object(h)
                    })
                    .collect();
                object.insert("headers".into(), headers.into());
                serde_json::to_writer(&mut *out, &serde_json::Value::Object(object))?;
                out.write_all(b"\n")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cairn_protocol::kafka_protocol::protocol::StrBytes;
    use cairn_protocol::kafka_protocol::records::TimestampType;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        let mut headers = cairn_protocol::kafka_protocol::indexmap::IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("trace"),
            Some(Bytes::from_static(b"abc")),
        );
        headers.insert(StrBytes::from_static_str("empty"), None);
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 42,
            sequence: -1,
            timestamp: 1_700_000_000_123,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers,
        }
    }

    fn print(printer: &Printer, r: &Record) -> String {
        let mut out = Vec::new();
        printer.write(&mut out, "orders", 3, r).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn start_positions() {
        assert_eq!(parse_start("earliest"), Ok(StartAt::Earliest));
        assert_eq!(parse_start("beginning"), Ok(StartAt::Earliest));
        assert_eq!(parse_start("latest"), Ok(StartAt::Latest));
        assert_eq!(parse_start("end"), Ok(StartAt::Latest));
        assert_eq!(parse_start("17"), Ok(StartAt::Offset(17)));
        assert_eq!(parse_start("-5"), Ok(StartAt::FromEnd(5)));
        assert_eq!(
            parse_start("@1700000000000"),
            Ok(StartAt::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            parse_start("@2023-11-14T22:13:20Z"),
            Ok(StartAt::Timestamp(1_700_000_000_000))
        );
        let Ok(StartAt::Timestamp(t)) = parse_start("@-1h") else {
            panic!("@-1h is a time");
        };
        let expected = now_ms() - 3_600_000;
        assert!(
            (expected - 5_000..=expected).contains(&t),
            "{t} vs {expected}"
        );
        for bad in ["", "-0", "-x", "soon", "@-1y", "@-h", "@yesterday", "1.5"] {
            assert!(parse_start(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_as_kcat_and_rpk() {
        let r = record(Some(b"k1"), Some(b"hello"));
        let p = parse_format("%t/%p@%o %T %k=%v (%K,%V) [%h] 100%%\\n").expect("parse");
        assert_eq!(
            print(&p, &r),
            "orders/3@42 1700000000123 k1=hello (2,5) [trace=abc,empty=] 100%\n"
        );
        let p = parse_format("%s|%S|%d\\t").expect("kcat and rpk letters");
        assert_eq!(print(&p, &r), "hello|5|1700000000123\t");
        let null = record(None, None);
        assert_eq!(
            print(&parse_format("%K %V %k%v.").expect("parse"), &null),
            "-1 -1 ."
        );
        for bad in ["%x", "%", "\\q", "tail\\"] {
            assert!(parse_format(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn json_lines_keep_binary_as_base64() {
        let r = record(Some(b"k1"), Some(&[0xff, 0x00, 0x01]));
        let line = print(&Printer::Json, &r);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["partition"], 3);
        assert_eq!(v["offset"], 42);
        assert_eq!(v["timestamp"], 1_700_000_000_123i64);
        assert_eq!(v["key"], "k1");
        assert!(v.get("key_base64").is_none());
        assert_eq!(v["value"], "/wAB");
        assert_eq!(v["value_base64"], true);
        assert_eq!(v["headers"][0]["key"], "trace");
        assert_eq!(v["headers"][0]["value"], "abc");
        assert!(v["headers"][1]["value"].is_null());
        let null = print(&Printer::Json, &record(None, None));
        let v: serde_json::Value = serde_json::from_str(&null).expect("json");
        assert!(v["key"].is_null() && v["value"].is_null());
    }
}
