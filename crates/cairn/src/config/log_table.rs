//! The `[log]` table: Kafka topic-config names mapped onto [`LogConfig`].
//!
//! One table, [`LOG_KEYS`], serves the TOML file and the `CAIRN_LOG_*` variables alike, so the
//! two cannot drift apart; [`log_settings`] reads the same names back for the startup log.

use std::collections::BTreeMap;
use std::fmt;

use cairn_storage::LogConfig;
use serde::{Deserialize, Deserializer};

/// One `[log]` setting: its Kafka name and how an integer value sets it.
pub(super) struct LogKey {
    /// Kafka's topic config name; the TOML key inside `[log]`.
    pub(super) name: &'static str,
    /// Sets the field; `Err` says what the value must be.
    pub(super) set: fn(&mut LogConfig, i64) -> Result<(), String>,
}

impl LogKey {
    /// `segment.bytes` -> `SEGMENT_BYTES`, the part after `CAIRN_LOG_`.
    pub(super) fn env_suffix(&self) -> String {
        self.name.to_ascii_uppercase().replace('.', "_")
    }
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The `[log]` settings. `log_settings` below lists the same names from a `LogConfig`;
/// a unit test checks that the two agree.
pub(super) static LOG_KEYS: [LogKey; 10] = [
    LogKey {
        name: "segment.bytes",
        set: |log, value| {
            log.segment_bytes = non_negative(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "segment.ms",
        set: |log, value| {
            log.segment_ms = non_negative(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "segment.index.bytes",
        set: |log, value| {
            log.segment_index_bytes = non_negative(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "index.interval.bytes",
        set: |log, value| {
            log.index_interval_bytes = non_negative(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "retention.bytes",
        set: |log, value| {
            log.retention_bytes = limit(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "retention.ms",
        set: |log, value| {
            log.retention_ms = limit(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "flush.messages",
        set: |log, value| {
            log.flush_messages = limit(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "flush.ms",
        set: |log, value| {
            log.flush_ms = limit(value)?;
            Ok(())
        },
    },
    LogKey {
        name: "max.message.bytes",
        set: |log, value| {
            log.max_batch_bytes = non_negative(value)?;
            Ok(())
        },
    },
    // Not a Kafka setting; named in the same style.
    LogKey {
        name: "max.open.segments",
        set: |log, value| {
            log.max_open_segments = non_negative(value)?;
            Ok(())
        },
    },
];

/// The `[log]` settings of `log` by Kafka name, `-1` for "no limit", in `LOG_KEYS` order.
///
/// The destructuring names every field on purpose: a field added to `LogConfig` breaks this
/// build until it has a name here and in `LOG_KEYS` (and a row in the README).
pub fn log_settings(log: &LogConfig) -> Vec<(&'static str, i128)> {
    let LogConfig {
        segment_bytes,
        segment_ms,
        segment_index_bytes,
        index_interval_bytes,
        retention_bytes,
        retention_ms,
        flush_messages,
        flush_ms,
        max_batch_bytes,
        max_open_segments,
    } = log;
    let limit = |value: &Option<u64>| value.map_or(-1, i128::from);
    vec![
        ("segment.bytes", i128::from(*segment_bytes)),
        ("segment.ms", i128::from(*segment_ms)),
        ("segment.index.bytes", i128::from(*segment_index_bytes)),
        ("index.interval.bytes", i128::from(*index_interval_bytes)),
        ("retention.bytes", limit(retention_bytes)),
        ("retention.ms", limit(retention_ms)),
        ("flush.messages", limit(flush_messages)),
        ("flush.ms", limit(flush_ms)),
        ("max.message.bytes", i128::from(*max_batch_bytes)),
        // usize always fits i128 on the 32- and 64-bit targets Rust supports.
        ("max.open.segments", *max_open_segments as i128),
    ]
}

/// A value that must be a non-negative integer fitting the field's type.
fn non_negative<T: TryFrom<i64>>(value: i64) -> Result<T, String> {
    T::try_from(value).map_err(|_| {
        if value < 0 {
            "must not be negative".to_string()
        } else {
            "is too large".to_string()
        }
    })
}

/// A Kafka-style limit: `-1` means none, otherwise a non-negative integer.
fn limit(value: i64) -> Result<Option<u64>, String> {
    match value {
        -1 => Ok(None),
        _ => u64::try_from(value)
            .map(Some)
            .map_err(|_| "must be -1 (no limit) or a non-negative integer".to_string()),
    }
}

/// Reads the `[log]` table onto `LogConfig::default()`.
///
/// Quoted Kafka names (`"segment.bytes" = 1`) are the documented form; unquoted dotted keys
/// (`segment.bytes = 1`) are TOML sub-tables, which we flatten back into the same names.
pub(super) fn deserialize_log_table<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<LogConfig, D::Error> {
    use serde::de::Error as _;
    let table = toml::Table::deserialize(deserializer)?;
    let mut flat = BTreeMap::new();
    flatten(&mut flat, "", table).map_err(D::Error::custom)?;
    let mut log = LogConfig::default();
    for (name, value) in flat {
        let Some(key) = LOG_KEYS.iter().find(|key| key.name == name) else {
            return Err(D::Error::custom(format!(
                "unknown key \"{name}\" in [log]; known keys: {}",
                LOG_KEYS
                    .iter()
                    .map(|key| key.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let toml::Value::Integer(number) = value else {
            return Err(D::Error::custom(format!(
                "[log] \"{name}\" must be an integer, not a {}",
                value.type_str()
            )));
        };
        (key.set)(&mut log, number)
            .map_err(|reason| D::Error::custom(format!("[log] \"{name}\" = {number} {reason}")))?;
    }
    Ok(log)
}

fn flatten(
    out: &mut BTreeMap<String, toml::Value>,
    prefix: &str,
    table: toml::Table,
) -> Result<(), String> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(out, &name, inner)?,
            value => {
                if out.insert(name.clone(), value).is_some() {
                    return Err(format!("[log] \"{name}\" is set twice"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_and_log_settings_agree() {
        let defaults = LogConfig::default();
        let names: Vec<_> = log_settings(&defaults).iter().map(|(n, _)| *n).collect();
        let keys: Vec<_> = LOG_KEYS.iter().map(|key| key.name).collect();
        assert_eq!(names, keys);
        // Setting each key changes exactly the setting of that name.
        for (index, key) in LOG_KEYS.iter().enumerate() {
            let mut log = defaults.clone();
            let before = log_settings(&log)[index].1;
            let value = if before == 777 { 778 } else { 777 };
            (key.set)(&mut log, value).expect("777 is valid for every key");
            let after = log_settings(&log);
            for (other, (name, setting)) in after.iter().enumerate() {
                if other == index {
                    assert_eq!(*setting, i128::from(value), "{name}");
                } else {
                    assert_eq!(*setting, log_settings(&defaults)[other].1, "{name}");
                }
            }
        }
    }

    #[test]
    fn env_names_are_upper_snake_kafka_names() {
        let suffixes: Vec<_> = LOG_KEYS.iter().map(LogKey::env_suffix).collect();
        assert!(suffixes.contains(&"SEGMENT_BYTES".to_string()));
        assert!(suffixes.contains(&"RETENTION_MS".to_string()));
        assert!(suffixes.contains(&"MAX_MESSAGE_BYTES".to_string()));
        assert!(suffixes.contains(&"SEGMENT_INDEX_BYTES".to_string()));
    }
}
