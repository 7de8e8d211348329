//! Topic configs: Kafka's per-topic settings, validated, with their defaults.
//!
//! Two kinds. *Log settings* (`retention.ms`, `segment.bytes`, `flush.messages`, ...) are
//! storage's own names ([`cairn_storage::KAFKA_NAMES`]) and take effect on the topic's logs.
//! *Stored settings* (`cleanup.policy`, `compression.type`, `min.insync.replicas`, ...) are
//! validated, kept and described like Kafka's, for the features that will use them (e.g.
//! compaction); until then they have no effect, which DescribeConfigs does not hide: their
//! documentation says so.

use std::collections::BTreeMap;

use cairn_storage::{LogConfig, BROKER_ONLY_NAMES, KAFKA_NAMES};

/// How a stored setting's value is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Long {
        min: i64,
    },
    Bool,
    Ratio,
    OneOf(&'static [&'static str]),
    /// A comma-separated subset.
    ListOf(&'static [&'static str]),
}

/// Settings Cairn keeps without acting on them yet, with Kafka's defaults.
const STORED: &[(&str, Kind, &str)] = &[
    (
        "cleanup.policy",
        Kind::ListOf(&["delete", "compact"]),
        "delete",
    ),
    (
        "compression.type",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        "producer",
    ),
    ("file.delete.delay.ms", Kind::Long { min: 0 }, "60000"),
    // KIP-937; Kafka 4's defaults (KIP-1030 bounded the future side to one hour).
    (
        "message.timestamp.after.max.ms",
        Kind::Long { min: 0 },
        "3600000",
    ),
    (
        "message.timestamp.before.max.ms",
        Kind::Long { min: 0 },
        "9223372036854775807",
    ),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio, "0.5"),
    ("min.insync.replicas", Kind::Long { min: 1 }, "1"),
    ("preallocate", Kind::Bool, "false"),
    ("unclean.leader.election.enable", Kind::Bool, "false"),
];

/// Stored settings the broker acts on (the produce path reads them through
/// [`TopicConfigs::produce_policy`], the log through [`TopicConfigs::log_config`]); the
/// others are only kept and described.
const ACTED_ON: &[&str] = &[
    "cleanup.policy",
    "min.cleanable.dirty.ratio",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
];

/// The rules a produced batch must meet on a topic, from its configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducePolicy {
    /// `message.timestamp.type=LogAppendTime`: the broker stamps each batch.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`: how far in the past a record's timestamp may be.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future.
    pub after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub keys_required: bool,
}

/// Log settings a topic may override (`max.open.segments` and the retention check interval
/// are the broker's alone).
fn is_log_setting(name: &str) -> bool {
    KAFKA_NAMES.contains(&name) && !BROKER_ONLY_NAMES.contains(&name)
}

/// An invalid topic config: which key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config {name}: {reason}")]
pub struct ConfigError {
    /// The key.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

fn invalid(name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// One config as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// The key.
    pub name: &'static str,
    /// The effective value.
    pub value: String,
    /// Whether the topic overrides it (else it is the broker's default).
    pub overridden: bool,
    /// Whether Cairn acts on it yet.
    pub effective: bool,
}

/// A topic's overrides (key → value as given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfigs {
    overrides: BTreeMap<String, String>,
}

fn check_value(name: &str, value: &str) -> Result<(), ConfigError> {
    if is_log_setting(name) {
        let number: i64 = value
            .trim()
            .parse()
            .map_err(|_| invalid(name, format!("{value:?} is not an integer")))?;
        let mut probe = LogConfig::default();
        probe
            .set_kafka(name, number)
            .map_err(|r| invalid(name, r))?;
        return probe.validate().map_err(|e| invalid(name, e.to_string()));
    }
    let Some((_, kind, _)) = STORED.iter().find(|(n, _, _)| *n == name) else {
        return Err(invalid(name, "unknown topic config"));
    };
    let ok = match kind {
        Kind::Long { min } => value.trim().parse::<i64>().is_ok_and(|v| v >= *min),
        Kind::Bool => matches!(value, "true" | "false"),
        Kind::Ratio => value
            .trim()
            .parse::<f64>()
            .is_ok_and(|v| (0.0..=1.0).contains(&v)),
        Kind::OneOf(allowed) => allowed.contains(&value),
        Kind::ListOf(allowed) => {
            !value.is_empty() && value.split(',').all(|v| allowed.contains(&v.trim()))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("{value:?} is not a valid value ({kind:?})"),
        ))
    }
}

impl TopicConfigs {
    /// Validated overrides from `(key, value)` pairs (CreateTopics). A `None` value means
    /// "use the default".
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<TopicConfigs, ConfigError> {
        let mut c = TopicConfigs::default();
        for (name, value) in pairs {
            if let Some(value) = value {
                c.set(name, value)?;
            }
        }
        Ok(c)
    }

    /// The overrides, for persisting.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Sets `name` to `value` after checking both.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        check_value(name, value)?;
        self.overrides.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Removes an override (back to the default). Unknown names are an error.
    pub fn delete(&mut self, name: &str) -> Result<(), ConfigError> {
        if !is_log_setting(name) && !STORED.iter().any(|(n, _, _)| *n == name) {
            return Err(invalid(name, "unknown topic config"));
        }
        self.overrides.remove(name);
        Ok(())
    }

    /// Adds `value` to a list setting (IncrementalAlterConfigs APPEND).
    pub fn append(
        &mut self,
        name: &str,
        value: &str,
        defaults: &LogConfig,
    ) -> Result<(), ConfigError> {
        let current = self.value_of(name, defaults)?;
        let mut items: Vec<String> = current
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for v in value.split(',') {
            if !items.iter().any(|i| i == v) {
                items.push(v.to_string());
            }
        }
        self.set(name, &items.join(","))
    }

    /// Removes `value` from a list setting (IncrementalAlterConfigs SUBTRACT).
    pub fn subtract(
        &mut self,
        name: &str,
        value: &str,
        defaults: &LogConfig,
    ) -> Result<(), ConfigError> {
        let current = self.value_of(name, defaults)?;
        let remove: Vec<&str> = value.split(',').collect();
        let items: Vec<&str> = current.split(',').filter(|i| !remove.contains(i)).collect();
        self.set(name, &items.join(","))
    }

    fn value_of(&self, name: &str, defaults: &LogConfig) -> Result<String, ConfigError> {
        self.describe(defaults)
            .into_iter()
            .find(|d| d.name == name)
            .map(|d| d.value)
            .ok_or_else(|| invalid(name, "unknown topic config"))
    }

    /// The topic's log settings: the broker's defaults with the overrides applied.
    pub fn log_config(&self, defaults: &LogConfig) -> Result<LogConfig, ConfigError> {
        let mut log = defaults.clone();
        for (name, value) in &self.overrides {
            if is_log_setting(name) {
                let number: i64 = value
                    .parse()
                    .map_err(|_| invalid(name, format!("{value:?} is not an integer")))?;
                log.set_kafka(name, number).map_err(|r| invalid(name, r))?;
            }
        }
        let policy = self.stored("cleanup.policy");
        log.compact = policy.split(',').any(|p| p.trim() == "compact");
        if !policy.split(',').any(|p| p.trim() == "delete") {
            // Kafka: a log that is only compacted is never trimmed by time or size.
            log.retention_ms = None;
            log.retention_bytes = None;
        }
        // Checked as a ratio in 0..=1 when set; the default always parses.
        let ratio: f64 = self
            .stored("min.cleanable.dirty.ratio")
            .trim()
            .parse()
            .unwrap_or(0.5);
        log.min_cleanable_dirty_ratio_ppm = (ratio.clamp(0.0, 1.0) * 1e6).round() as u32;
        log.validate()
            .map_err(|e| invalid("topic", e.to_string()))?;
        Ok(log)
    }

    /// Every topic config with its effective value.
    pub fn describe(&self, defaults: &LogConfig) -> Vec<DescribedConfig> {
        let mut out = Vec::new();
        for (name, value) in defaults.kafka_settings() {
            if !is_log_setting(name) {
                continue;
            }
            let overridden = self.overrides.get(name);
            out.push(DescribedConfig {
                name,
                value: overridden.cloned().unwrap_or_else(|| value.to_string()),
                overridden: overridden.is_some(),
                effective: true,
            });
        }
        for (name, _, default) in STORED {
            let overridden = self.overrides.get(*name);
            out.push(DescribedConfig {
                name,
                value: overridden.cloned().unwrap_or_else(|| default.to_string()),
                overridden: overridden.is_some(),
                effective: ACTED_ON.contains(name),
            });
        }
        out.sort_by_key(|d| d.name);
        out
    }

    /// The value of a stored setting: the override, else Kafka's default.
    fn stored(&self, name: &str) -> &str {
        self.overrides.get(name).map_or_else(
            || {
                STORED
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map_or("", |(_, _, default)| default)
            },
            String::as_str,
        )
    }

    /// What the produce path enforces on this topic.
    pub fn produce_policy(&self) -> ProducePolicy {
        // Values were checked when set; a default never fails to parse.
        let long = |name: &str| self.stored(name).trim().parse::<i64>().unwrap_or(i64::MAX);
        ProducePolicy {
            log_append_time: self.stored("message.timestamp.type") == "LogAppendTime",
            before_max_ms: long("message.timestamp.before.max.ms"),
            after_max_ms: long("message.timestamp.after.max.ms"),
            keys_required: self
                .stored("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "compact"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_applies_and_describes() {
        let defaults = LogConfig::default();
        let mut c = TopicConfigs::from_pairs([
            ("retention.ms", Some("60000")),
            ("cleanup.policy", Some("compact,delete")),
            ("flush.ms", None),
        ])
        .expect("valid");
        let log = c.log_config(&defaults).expect("log config");
        assert_eq!(log.retention_ms, Some(60_000));
        assert!(log.compact);
        // Compaction alone: time and size retention do not apply (Kafka).
        c.set("cleanup.policy", "compact").expect("set");
        c.set("min.cleanable.dirty.ratio", "0.25").expect("set");
        let log = c.log_config(&defaults).expect("log config");
        assert_eq!((log.retention_ms, log.compact), (None, true));
        assert_eq!(log.min_cleanable_dirty_ratio_ppm, 250_000);
        c.set("cleanup.policy", "delete").expect("set");
        let log = c.log_config(&defaults).expect("log config");
        assert_eq!((log.retention_ms, log.compact), (Some(60_000), false));
        c.set("cleanup.policy", "compact").expect("set");
        assert!(c.set("retention.ms", "-1").is_ok());
        assert_eq!(c.log_config(&defaults).expect("log").retention_ms, None);
        assert!(
            c.set("segment.bytes", "12").is_err(),
            "below the format's minimum"
        );
        assert!(c.set("no.such.config", "1").is_err());
        assert!(c.set("cleanup.policy", "shred").is_err());
        assert!(c.set("min.insync.replicas", "0").is_err());
        c.append("cleanup.policy", "delete", &defaults)
            .expect("append");
        let d = c.describe(&defaults);
        let policy = d
            .iter()
            .find(|d| d.name == "cleanup.policy")
            .expect("listed");
        assert_eq!(
            (policy.value.as_str(), policy.overridden),
            ("compact,delete", true)
        );
        c.subtract("cleanup.policy", "compact", &defaults)
            .expect("subtract");
        assert_eq!(c.overrides()["cleanup.policy"], "delete");
        c.delete("retention.ms").expect("delete");
        let r = c
            .describe(&defaults)
            .into_iter()
            .find(|d| d.name == "retention.ms")
            .expect("listed");
        assert_eq!((r.value.as_str(), r.overridden), ("604800000", false));
        assert!(!c
            .describe(&defaults)
            .iter()
            .any(|d| d.name == "max.open.segments"));
    }

    #[test]
    fn produce_policy_follows_the_configs() {
        let plain = TopicConfigs::default().produce_policy();
        assert_eq!(
            plain,
            ProducePolicy {
                log_append_time: false,
                before_max_ms: i64::MAX,
                after_max_ms: 3_600_000,
                keys_required: false,
            }
        );
        let c = TopicConfigs::from_pairs([
            ("message.timestamp.type", Some("LogAppendTime")),
            ("message.timestamp.before.max.ms", Some("1000")),
            ("cleanup.policy", Some("delete,compact")),
        ])
        .expect("valid");
        let p = c.produce_policy();
        assert!(p.log_append_time && p.keys_required);
        assert_eq!((p.before_max_ms, p.after_max_ms), (1000, 3_600_000));
        assert!(c
            .describe(&LogConfig::default())
            .iter()
            .any(|d| d.name == "message.timestamp.type" && d.effective));
    }
}
