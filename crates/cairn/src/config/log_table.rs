//! The `[log]` table: Kafka topic-config names mapped onto [`LogConfig`].
//!
//! One table, [`LOG_KEYS`], serves the TOML file and the `CAIRN_LOG_*` variables alike, so the
//! two cannot drift apart; [`log_settings`] reads the same names back for the startup log.

use std::collections::BTreeMap;
use std::fmt;

use cairn_storage::LogConfig;
use serde::{Deserialize, Deserializer};

/// One `[log]` setting: its Kafka name (storage owns the names and their meaning).
pub(super) struct LogKey {
    /// Kafka's topic config name; the TOML key inside `[log]`.
    pub(super) name: &'static str,
}

impl LogKey {
    /// `segment.bytes` -> `SEGMENT_BYTES`, the part after `CAIRN_LOG_`.
    pub(super) fn env_suffix(&self) -> String {
        self.name.to_ascii_uppercase().replace('.', "_")
    }

    /// Sets this setting on `log`; `Err` says what the value must be.
    pub(super) fn set(&self, log: &mut LogConfig, value: i64) -> Result<(), String> {
        log.set_kafka(self.name, value)
    }
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The `[log]` settings: storage's Kafka names.
pub(super) static LOG_KEYS: [LogKey; 14] = {
    let n = cairn_storage::KAFKA_NAMES;
    [
        LogKey { name: n[0] },
        LogKey { name: n[1] },
        LogKey { name: n[2] },
        LogKey { name: n[3] },
        LogKey { name: n[4] },
        LogKey { name: n[5] },
        LogKey { name: n[6] },
        LogKey { name: n[7] },
        LogKey { name: n[8] },
        LogKey { name: n[9] },
        LogKey { name: n[10] },
        LogKey { name: n[11] },
        LogKey { name: n[12] },
        LogKey { name: n[13] },
    ]
};

/// The `[log]` settings of `log` by Kafka name, `-1` for "no limit".
pub fn log_settings(log: &LogConfig) -> Vec<(&'static str, i128)> {
    log.kafka_settings()
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
        key.set(&mut log, number)
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
    fn env_names_are_upper_snake_kafka_names() {
        let suffixes: Vec<_> = LOG_KEYS.iter().map(LogKey::env_suffix).collect();
        assert!(suffixes.contains(&"SEGMENT_BYTES".to_string()));
        assert!(suffixes.contains(&"RETENTION_MS".to_string()));
        assert!(suffixes.contains(&"MAX_MESSAGE_BYTES".to_string()));
        assert!(suffixes.contains(&"SEGMENT_INDEX_BYTES".to_string()));
    }
}
