//! Cairn's configuration: one struct, filled in four layers.
//!
//! Precedence, lowest to highest:
//!
//! 1. built-in defaults ([`Config::default`], Kafka's defaults where Kafka has the setting);
//! 2. the TOML file: `--config FILE`, else `$CAIRN_CONFIG`, else `./cairn.toml` if it exists
//!    (a file named by the flag or the variable must exist);
//! 3. `CAIRN_*` environment variables;
//! 4. command-line flags.
//!
//! The `[log]` table holds the defaults for every partition log. Its keys are Kafka's topic
//! config names (`"segment.bytes"`, `"retention.ms"`, ...), and `-1` means "no limit" where
//! Kafka says so; `log_table` maps those names onto [`LogConfig`] for the file and for the
//! `CAIRN_LOG_*` variables alike.
//!
//! Everything here is pure except [`Config::load`], which reads the process environment and
//! the file and hands them to [`Config::resolve`]; the tests drive `resolve` with plain values.
//!
//! The layers also record which of Kafka's broker configs were set explicitly
//! ([`Config::static_broker_configs`]): DescribeConfigs reports those as
//! STATIC_BROKER_CONFIG and the rest as DEFAULT_CONFIG, as Kafka does for server.properties.

mod broker_table;
mod log_table;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cairn_storage::LogConfig;
use serde::Deserialize;

pub use self::broker_table::BrokerSettings;
use self::broker_table::{deserialize_broker_table, env_suffix, BROKER_KEYS};
pub use self::log_table::log_settings;
use self::log_table::{deserialize_log_table, LOG_KEYS};

/// Default of `http_max_request_bytes`: 16 MiB.
pub const DEFAULT_HTTP_MAX_REQUEST_BYTES: u64 = 16 << 20;
/// Bounds of `http_max_request_bytes`.
const HTTP_MAX_REQUEST_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=(1 << 30);

/// Where the HTTP API listens: `IP:PORT`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum HttpListen {
    /// No HTTP API.
    Off,
    /// Bind this address.
    On(SocketAddr),
}

impl HttpListen {
    /// The address to bind, if any.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            HttpListen::Off => None,
            HttpListen::On(addr) => Some(addr),
        }
    }
}

impl std::str::FromStr for HttpListen {
    type Err = String;

    fn from_str(s: &str) -> Result<HttpListen, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(HttpListen::Off);
        }
        s.parse()
            .map(HttpListen::On)
            .map_err(|e| format!("{s:?}: {e} (expected IP:PORT, e.g. 127.0.0.1:8080, or off)"))
    }
}

impl TryFrom<String> for HttpListen {
    type Error = String;

    fn try_from(s: String) -> Result<HttpListen, String> {
        s.parse()
    }
}

impl std::fmt::Display for HttpListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpListen::Off => f.write_str("off"),
            HttpListen::On(addr) => write!(f, "{addr}"),
        }
    }
}

/// Environment variable naming the configuration file; `--config` overrides it.
pub const CONFIG_ENV: &str = "CAIRN_CONFIG";
/// File read when neither `--config` nor `CAIRN_CONFIG` names one, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "cairn.toml";
/// Every variable Cairn reads starts with this.
const ENV_PREFIX: &str = "CAIRN_";
/// Variables for `[log]` settings: this prefix, then the Kafka name in upper snake case.
const LOG_ENV_PREFIX: &str = "CAIRN_LOG_";
/// Variables for `[broker]` settings, likewise.
const BROKER_ENV_PREFIX: &str = "CAIRN_BROKER_";

/// The whole configuration of a broker node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding this node's logs and its `.lock` file.
    pub data_dir: PathBuf,
    /// Address the Kafka listener binds.
    pub listen: SocketAddr,
    /// `host:port` that clients are told to connect to; `listen` when unset.
    pub advertise: Option<String>,
    /// Address the HTTP API binds, or off.
    pub http_listen: HttpListen,
    /// Largest body of an HTTP produce request.
    pub http_max_request_bytes: u64,
    /// Log verbosity: a level (`info`) or a tracing directive list (`info,cairn=debug`).
    /// `RUST_LOG`, when set, takes precedence.
    pub log_level: String,
    /// Defaults for every partition log (the `[log]` table, Kafka names).
    #[serde(deserialize_with = "deserialize_log_table")]
    pub log: LogConfig,
    /// The node's broker settings (the `[broker]` table, Kafka names).
    #[serde(deserialize_with = "deserialize_broker_table")]
    pub broker: BrokerSettings,
    /// Kafka broker config names set by the file, the environment or a flag (`[log]` keys
    /// under their broker names, `advertise` as `advertised.listeners`); not a file key.
    #[serde(skip)]
    pub static_broker_configs: BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("cairn-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertise: None,
            http_listen: HttpListen::On(SocketAddr::from(([127, 0, 0, 1], 8080))),
            http_max_request_bytes: DEFAULT_HTTP_MAX_REQUEST_BYTES,
            log_level: "info".to_string(),
            log: LogConfig::default(),
            broker: BrokerSettings::default(),
            static_broker_configs: BTreeSet::new(),
        }
    }
}

/// The broker config name a `[log]` key or `[broker]` key stands for.
fn broker_config_name(table: &str, key: &str) -> Option<String> {
    match table {
        "log" => cairn_broker::broker_name_of_log_setting(key).map(str::to_string),
        _ => Some(key.to_string()),
    }
}

/// The keys set in the file's `[log]` and `[broker]` tables, as broker config names, plus
/// `advertised.listeners` for `advertise`. Dotted unquoted keys (sub-tables) are flattened
/// back into one name, as the tables' readers do.
fn file_broker_configs(text: &str) -> BTreeSet<String> {
    fn keys(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys(&name, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut set = BTreeSet::new();
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return set;
    };
    for name in ["log", "broker"] {
        if let Some(value) = table.get(name) {
            let mut found = Vec::new();
            keys("", value, &mut found);
            set.extend(found.iter().filter_map(|k| broker_config_name(name, k)));
        }
    }
    if table.contains_key("advertise") {
        set.insert("advertised.listeners".to_string());
    }
    set
}

/// Command-line flags that override the configuration (the highest layer).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML) [env: CAIRN_CONFIG; default: ./cairn.toml if it exists]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for this node's data [env: CAIRN_DATA_DIR; default: ./cairn-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [env: CAIRN_LISTEN; default: 127.0.0.1:9092]
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// host:port advertised to clients [env: CAIRN_ADVERTISE; default: the listen address]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Address of the HTTP API, or off [env: CAIRN_HTTP_LISTEN; default: 127.0.0.1:8080]
    #[arg(long, value_name = "IP:PORT|off")]
    pub http_listen: Option<HttpListen>,
    /// Log level or tracing directives [env: CAIRN_LOG_LEVEL; default: info; RUST_LOG wins]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// This node's id, `node.id` [env: CAIRN_BROKER_NODE_ID; default: 1]
    #[arg(long, value_name = "ID")]
    pub node_id: Option<i32>,
    /// Every node of a cluster, `controller.quorum.voters` [env:
    /// CAIRN_BROKER_CONTROLLER_QUORUM_VOTERS; default: none, a single node]
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    pub voters: Option<String>,
    /// Where this node listens for its peers, `cluster.listen` [env:
    /// CAIRN_BROKER_CLUSTER_LISTEN; default: its entry in --voters]
    #[arg(long, value_name = "IP:PORT")]
    pub cluster_listen: Option<String>,
}

/// A configuration together with where it came from, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The merged configuration (not yet validated; see [`Config::validate`]).
    pub config: Config,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// Things worth telling the operator that are not errors (e.g. unknown `CAIRN_*`
    /// variables); logged once logging is up.
    pub warnings: Vec<String>,
}

/// The `CAIRN_*` variables of an environment, by name. Empty values count as unset, so that
/// `CAIRN_ADVERTISE=${ADVERTISE:-}` in a compose file means "not given".
pub type CairnEnv = BTreeMap<String, String>;

impl Config {
    /// Reads the process environment and the configuration file, and merges all layers.
    pub fn load(args: &ConfigArgs) -> anyhow::Result<Loaded> {
        let env = cairn_env_from_process()?;
        let (path, required) = match (&args.config, env.get(CONFIG_ENV)) {
            (Some(path), _) => (path.clone(), true),
            (None, Some(path)) => (PathBuf::from(path), true),
            (None, None) => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot read config file {}", path.display()))
            }
        };
        let file = text.as_deref().map(|text| (path.as_path(), text));
        Config::resolve(file, &env, args)
    }

    /// Merges defaults < `file` (path and contents) < `env` < `args`. Pure.
    pub fn resolve(
        file: Option<(&Path, &str)>,
        env: &CairnEnv,
        args: &ConfigArgs,
    ) -> anyhow::Result<Loaded> {
        let mut config = match file {
            Some((path, text)) => {
                let mut config = parse_toml(path, text)?;
                config.static_broker_configs = file_broker_configs(text);
                config
            }
            None => Config::default(),
        };
        let warnings = config.apply_env(env)?;
        config.apply_args(args)?;
        Ok(Loaded {
            config,
            file: file.map(|(path, _)| path.to_path_buf()),
            warnings,
        })
    }

    /// Overrides fields from `CAIRN_*` variables; returns warnings for unknown ones.
    fn apply_env(&mut self, env: &CairnEnv) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (name, value) in env {
            match name.as_str() {
                // Chooses the file; already consumed by `load`.
                CONFIG_ENV => {}
                "CAIRN_DATA_DIR" => self.data_dir = PathBuf::from(value),
                "CAIRN_HTTP_LISTEN" => {
                    self.http_listen = value
                        .parse()
                        .map_err(|err| anyhow::anyhow!("{name}={err}"))?;
                }
                "CAIRN_HTTP_MAX_REQUEST_BYTES" => {
                    self.http_max_request_bytes = value.trim().parse().map_err(|_| {
                        anyhow::anyhow!("{name}={value:?}: expected a number of bytes")
                    })?;
                }
                "CAIRN_LISTEN" => {
                    self.listen = value.trim().parse().map_err(|err| {
                        anyhow::anyhow!(
                            "{name}={value:?}: {err} (expected IP:PORT, e.g. 127.0.0.1:9092)"
                        )
                    })?;
                }
                "CAIRN_ADVERTISE" => {
                    self.advertise = Some(value.clone());
                    self.static_broker_configs
                        .insert("advertised.listeners".to_string());
                }
                "CAIRN_LOG_LEVEL" => self.log_level = value.clone(),
                _ if name.starts_with(BROKER_ENV_PREFIX) => {
                    let suffix = &name[BROKER_ENV_PREFIX.len()..];
                    // As with [log]: a misspelt broker setting is an error, not ignored.
                    let Some(key) = BROKER_KEYS.iter().find(|k| env_suffix(k) == suffix) else {
                        bail!(
                            "unknown environment variable {name}; known [broker] variables: {}",
                            BROKER_KEYS
                                .iter()
                                .map(|k| format!("{BROKER_ENV_PREFIX}{}", env_suffix(k)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    };
                    self.broker.set(key, value).map_err(|reason| {
                        anyhow::anyhow!("{name}={value:?}: broker setting \"{key}\" {reason}")
                    })?;
                    self.static_broker_configs.insert(key.to_string());
                }
                _ => {
                    if let Some(suffix) = name.strip_prefix(LOG_ENV_PREFIX) {
                        // A misspelt retention or flush setting silently ignored could lose
                        // data or disk, so an unknown CAIRN_LOG_* variable is an error.
                        let key = LOG_KEYS.iter().find(|key| key.env_suffix() == suffix);
                        let Some(key) = key else {
                            bail!(
                                "unknown environment variable {name}; known [log] variables: {}",
                                LOG_KEYS
                                    .iter()
                                    .map(|key| format!("{LOG_ENV_PREFIX}{}", key.env_suffix()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        };
                        let number: i64 = value.trim().parse().map_err(|_| {
                            anyhow::anyhow!(
                                "{name}={value:?}: log setting \"{}\" must be an integer",
                                key.name
                            )
                        })?;
                        key.set(&mut self.log, number).map_err(|reason| {
                            anyhow::anyhow!(
                                "{name}={value:?}: log setting \"{}\" {reason}",
                                key.name
                            )
                        })?;
                        self.static_broker_configs
                            .extend(broker_config_name("log", key.name));
                    } else {
                        // Other tools share the prefix (the test harness sets CAIRN_BIN), so
                        // only warn.
                        warnings.push(format!("ignoring unknown environment variable {name}"));
                    }
                }
            }
        }
        Ok(warnings)
    }

    /// Overrides fields from command-line flags.
    fn apply_args(&mut self, args: &ConfigArgs) -> anyhow::Result<()> {
        let ConfigArgs {
            config: _,
            data_dir,
            listen,
            advertise,
            http_listen,
            log_level,
            node_id,
            voters,
            cluster_listen,
        } = args;
        let broker = [
            ("node.id", node_id.map(|n| n.to_string())),
            ("controller.quorum.voters", voters.clone()),
            ("cluster.listen", cluster_listen.clone()),
        ];
        for (key, value) in broker {
            if let Some(value) = value {
                self.broker.set(key, &value).map_err(|reason| {
                    anyhow::anyhow!("--{}={value:?}: {reason}", key.replace('.', "-"))
                })?;
                self.static_broker_configs.insert(key.to_string());
            }
        }
        if let Some(http_listen) = http_listen {
            self.http_listen = *http_listen;
        }
        if let Some(data_dir) = data_dir {
            self.data_dir = data_dir.clone();
        }
        if let Some(listen) = listen {
            self.listen = *listen;
        }
        if let Some(advertise) = advertise {
            self.advertise = Some(advertise.clone());
            self.static_broker_configs
                .insert("advertised.listeners".to_string());
        }
        if let Some(log_level) = log_level {
            self.log_level = log_level.clone();
        }
        Ok(())
    }

    /// Checks every setting, so a bad value stops the node before it touches the disk.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        match &self.advertise {
            Some(advertise) => check_advertise(advertise)?,
            // Kafka refuses to advertise the wildcard address too: clients could not use it.
            None if self.listen.ip().is_unspecified() => bail!(
                "listen {} is a wildcard address; set advertise (--advertise, CAIRN_ADVERTISE) \
                 to the host:port clients should connect to",
                self.listen
            ),
            None => {}
        }
        check_log_level(&self.log_level)?;
        self.to_log_config().validate()?;
        if !HTTP_MAX_REQUEST_BYTES_RANGE.contains(&self.http_max_request_bytes) {
            bail!(
                "http_max_request_bytes {} must be from {} to {}",
                self.http_max_request_bytes,
                HTTP_MAX_REQUEST_BYTES_RANGE.start(),
                HTTP_MAX_REQUEST_BYTES_RANGE.end()
            );
        }
        if let (Some(http), true) = (self.http_listen.addr(), self.listen.port() != 0) {
            if http == self.listen {
                bail!(
                    "http_listen {http} is also the Kafka listen address; give the HTTP API                      another port (or http_listen = \"off\")"
                );
            }
        }
        Ok(())
    }

    /// The advertised host and port, split (validated by [`Config::validate`]).
    pub fn advertise_host_port(&self) -> (String, u16) {
        match self.advertise.as_deref().and_then(|a| a.rsplit_once(':')) {
            Some((host, port)) => (
                host.trim_matches(['[', ']']).to_string(),
                port.parse().unwrap_or(self.listen.port()),
            ),
            None => (self.listen.ip().to_string(), self.listen.port()),
        }
    }

    /// The `host:port` clients are told to connect to.
    pub fn advertise_addr(&self) -> String {
        match &self.advertise {
            Some(advertise) => advertise.clone(),
            None => self.listen.to_string(),
        }
    }

    /// The per-partition log defaults, as the storage engine takes them.
    pub fn to_log_config(&self) -> LogConfig {
        self.log.clone()
    }
}

/// The `CAIRN_*` variables of this process. A non-UTF-8 value is an error naming the variable.
fn cairn_env_from_process() -> anyhow::Result<CairnEnv> {
    let mut env = CairnEnv::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|name| name.starts_with(ENV_PREFIX)) else {
            continue;
        };
        let Some(value) = value.to_str() else {
            bail!("environment variable {name} is not valid UTF-8");
        };
        if !value.is_empty() {
            env.insert(name.to_string(), value.to_string());
        }
    }
    Ok(env)
}

/// Parses the file, turning toml's multi-line report into one line with the line number.
fn parse_toml(path: &Path, text: &str) -> anyhow::Result<Config> {
    toml::from_str(text).map_err(|err| {
        let location = match err.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                format!(", line {line}")
            }
            None => String::new(),
        };
        anyhow::anyhow!(
            "invalid config file {}{location}: {}",
            path.display(),
            err.message().trim_end()
        )
    })
}

fn check_advertise(advertise: &str) -> anyhow::Result<()> {
    let invalid = |why: &str| {
        anyhow::anyhow!("advertise {advertise:?}: {why} (expected host:port, e.g. broker1:9092)")
    };
    let (host, port) = advertise
        .rsplit_once(':')
        .ok_or_else(|| invalid("no port"))?;
    match port.parse::<u16>() {
        Ok(port) if port != 0 => {}
        _ => return Err(invalid("port must be a number from 1 to 65535")),
    }
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    if matches!(host, "0.0.0.0" | "[::]") {
        return Err(invalid("a wildcard address cannot be connected to"));
    }
    Ok(())
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

fn check_log_level(log_level: &str) -> anyhow::Result<()> {
    let directives = log_level.contains(['=', ',']);
    // A bare word is a target filter to tracing, so "verbose" would silently log nothing;
    // insist on a level unless the value is clearly a directive list.
    if !directives && !LEVELS.contains(&log_level.trim().to_ascii_lowercase().as_str()) {
        bail!(
            "log_level {log_level:?}: expected one of {} or tracing directives such as \
             \"info,cairn=debug\"",
            LEVELS.join(", ")
        );
    }
    tracing_subscriber::EnvFilter::try_new(log_level)
        .map_err(|err| anyhow::anyhow!("log_level {log_level:?}: {err}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> CairnEnv {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn resolve(
        file: Option<&str>,
        pairs: &[(&str, &str)],
        args: &ConfigArgs,
    ) -> anyhow::Result<Loaded> {
        Config::resolve(
            file.map(|text| (Path::new("cairn.toml"), text)),
            &env(pairs),
            args,
        )
    }

    fn error(result: anyhow::Result<Loaded>) -> String {
        match result {
            Ok(loaded) => panic!("expected an error, got {loaded:?}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn defaults_match_kafka_and_validate() {
        let loaded = resolve(None, &[], &ConfigArgs::default()).expect("defaults load");
        let config = loaded.config;
        assert_eq!(config, Config::default());
        assert_eq!(config.data_dir, PathBuf::from("cairn-data"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(config.advertise_addr(), "127.0.0.1:9092");
        assert_eq!(config.log_level, "info");
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.http_max_request_bytes, 16 << 20);
        assert_eq!(config.to_log_config(), LogConfig::default());
        config.validate().expect("defaults are valid");
        assert!(loaded.file.is_none());
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn each_layer_overrides_the_one_below() {
        let file = r#"
            data_dir = "/from/file"
            listen = "127.0.0.1:1001"
            advertise = "file-host:1001"
            log_level = "warn"
            [log]
            "segment.bytes" = 2048
            "retention.ms" = 1000
        "#;
        let flags = ConfigArgs {
            listen: Some("127.0.0.1:3003".parse().expect("valid address")),
            ..ConfigArgs::default()
        };
        let environment = [
            ("CAIRN_DATA_DIR", "/from/env"),
            ("CAIRN_LISTEN", "127.0.0.1:2002"),
            ("CAIRN_LOG_SEGMENT_BYTES", "4096"),
        ];

        // File over defaults.
        let config = resolve(Some(file), &[], &ConfigArgs::default())
            .expect("file loads")
            .config;
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:1001");
        assert_eq!(config.advertise_addr(), "file-host:1001");
        assert_eq!(config.log_level, "warn");
        assert_eq!(config.log.segment_bytes, 2048);
        assert_eq!(config.log.retention_ms, Some(1000));
        // Untouched [log] keys keep their defaults.
        assert_eq!(config.log.segment_ms, LogConfig::default().segment_ms);

        // Environment over file.
        let config = resolve(Some(file), &environment, &ConfigArgs::default())
            .expect("env loads")
            .config;
        assert_eq!(config.data_dir, PathBuf::from("/from/env"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:2002");
        assert_eq!(config.log.segment_bytes, 4096);
        assert_eq!(config.log.retention_ms, Some(1000));

        // Flags over environment; what no flag sets stays as the environment left it.
        let config = resolve(Some(file), &environment, &flags)
            .expect("flags load")
            .config;
        assert_eq!(config.listen.to_string(), "127.0.0.1:3003");
        assert_eq!(config.data_dir, PathBuf::from("/from/env"));
        assert_eq!(config.advertise_addr(), "file-host:1001");
    }

    #[test]
    fn every_flag_and_plain_variable_is_applied() {
        let flags = ConfigArgs {
            config: None,
            data_dir: Some(PathBuf::from("/flag")),
            listen: Some("[::1]:9093".parse().expect("valid address")),
            advertise: Some("broker1:9093".to_string()),
            http_listen: Some(HttpListen::Off),
            log_level: Some("debug".to_string()),
            node_id: Some(2),
            voters: Some("1@127.0.0.1:7001,2@127.0.0.1:7002".to_string()),
            cluster_listen: Some("0.0.0.0:7002".to_string()),
        };
        let config = resolve(None, &[], &flags).expect("flags load").config;
        assert_eq!(config.broker.node_id, 2);
        assert_eq!(
            config.broker.controller_quorum_voters,
            "1@127.0.0.1:7001,2@127.0.0.1:7002"
        );
        assert_eq!(
            config.broker.cluster_listen.as_deref(),
            Some("0.0.0.0:7002")
        );
        let bad = ConfigArgs {
            voters: Some("1@nowhere".to_string()),
            ..ConfigArgs::default()
        };
        assert!(
            resolve(None, &[], &bad).is_err(),
            "voters are checked when read"
        );
        assert_eq!(config.http_listen, HttpListen::Off);
        assert_eq!(config.data_dir, PathBuf::from("/flag"));
        assert_eq!(config.listen.to_string(), "[::1]:9093");
        assert_eq!(config.advertise_addr(), "broker1:9093");
        assert_eq!(config.log_level, "debug");

        let environment = [
            ("CAIRN_ADVERTISE", "broker2:9094"),
            ("CAIRN_LOG_LEVEL", "warn"),
            ("CAIRN_CONFIG", "/ignored/here.toml"),
        ];
        let config = resolve(None, &environment, &ConfigArgs::default())
            .expect("env loads")
            .config;
        assert_eq!(config.advertise_addr(), "broker2:9094");
        assert_eq!(config.log_level, "warn");
    }

    #[test]
    fn explicitly_set_settings_are_static_broker_configs() {
        let file = r#"
            advertise = "h:1"
            [log]
            "retention.ms" = 1000
            segment.bytes = 4096
            "max.open.segments" = 9
            [broker]
            "num.partitions" = 3
        "#;
        let environment = [
            ("CAIRN_BROKER_AUTO_CREATE_TOPICS_ENABLE", "false"),
            ("CAIRN_LOG_FLUSH_MESSAGES", "1"),
        ];
        let config = resolve(Some(file), &environment, &ConfigArgs::default())
            .expect("loads")
            .config;
        let names: Vec<&str> = config
            .static_broker_configs
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            [
                "advertised.listeners",
                "auto.create.topics.enable",
                "log.flush.interval.messages",
                "log.retention.ms",
                "log.segment.bytes",
                "num.partitions",
            ],
            "max.open.segments has no Kafka broker name"
        );
        let flags = ConfigArgs {
            advertise: Some("b:2".into()),
            ..ConfigArgs::default()
        };
        let config = resolve(None, &[], &flags).expect("loads").config;
        assert!(config
            .static_broker_configs
            .contains("advertised.listeners"));
        assert!(resolve(None, &[], &ConfigArgs::default())
            .expect("loads")
            .config
            .static_broker_configs
            .is_empty());
    }

    #[test]
    fn http_settings_come_from_every_layer() {
        let file = "http_listen = \"127.0.0.1:1111\"\nhttp_max_request_bytes = 2048\n";
        let config = resolve(Some(file), &[], &ConfigArgs::default())
            .expect("file loads")
            .config;
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:1111");
        assert_eq!(config.http_max_request_bytes, 2048);
        let environment = [
            ("CAIRN_HTTP_LISTEN", "off"),
            ("CAIRN_HTTP_MAX_REQUEST_BYTES", "4096"),
        ];
        let config = resolve(Some(file), &environment, &ConfigArgs::default())
            .expect("env loads")
            .config;
        assert_eq!(config.http_listen, HttpListen::Off);
        assert_eq!(config.http_max_request_bytes, 4096);
        let flags = ConfigArgs {
            http_listen: Some("127.0.0.1:3333".parse().expect("valid")),
            ..ConfigArgs::default()
        };
        let config = resolve(Some(file), &environment, &flags)
            .expect("flags load")
            .config;
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:3333");

        let message = error(resolve(
            None,
            &[("CAIRN_HTTP_LISTEN", "localhost")],
            &ConfigArgs::default(),
        ));
        assert!(message.contains("CAIRN_HTTP_LISTEN"), "{message}");
        assert!(message.contains("expected IP:PORT"), "{message}");
        let message = error(resolve(
            Some("http_listen = \"nowhere\"\n"),
            &[],
            &ConfigArgs::default(),
        ));
        assert!(message.contains("line 1"), "{message}");
        assert!(message.contains("or off"), "{message}");
        for (pairs, expected) in [
            (
                &[("CAIRN_HTTP_MAX_REQUEST_BYTES", "10")][..],
                "http_max_request_bytes 10",
            ),
            (
                &[("CAIRN_HTTP_LISTEN", "127.0.0.1:9092")][..],
                "also the Kafka listen address",
            ),
        ] {
            let config = resolve(None, pairs, &ConfigArgs::default())
                .expect("parses")
                .config;
            let message = format!("{:#}", config.validate().expect_err("invalid"));
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn minus_one_means_no_limit() {
        let file = r#"
            [log]
            "retention.ms" = -1
            "retention.bytes" = -1
            "flush.messages" = 1
            "flush.ms" = 0
        "#;
        let log = resolve(Some(file), &[], &ConfigArgs::default())
            .expect("loads")
            .config
            .to_log_config();
        assert_eq!(log.retention_ms, None);
        assert_eq!(log.retention_bytes, None);
        assert_eq!(log.flush_messages, Some(1));
        assert_eq!(log.flush_ms, Some(0));

        let environment = [
            ("CAIRN_LOG_RETENTION_MS", "-1"),
            ("CAIRN_LOG_FLUSH_MS", "250"),
        ];
        let log = resolve(Some(file), &environment, &ConfigArgs::default())
            .expect("loads")
            .config
            .to_log_config();
        assert_eq!(log.retention_ms, None);
        assert_eq!(log.flush_ms, Some(250));
    }

    #[test]
    fn unquoted_dotted_keys_mean_the_same_setting() {
        let file = "[log]\nsegment.bytes = 4096\nmax.message.bytes = 2000\n";
        let log = resolve(Some(file), &[], &ConfigArgs::default())
            .expect("loads")
            .config
            .log;
        assert_eq!(log.segment_bytes, 4096);
        assert_eq!(log.max_batch_bytes, 2000);

        let twice = "[log]\n\"segment.bytes\" = 4096\nsegment.bytes = 8192\n";
        let message = error(resolve(Some(twice), &[], &ConfigArgs::default()));
        assert!(message.contains("segment.bytes"), "{message}");
    }

    #[test]
    fn unknown_file_keys_are_errors_naming_the_key() {
        let message = error(resolve(
            Some("lisen = \"x\"\n"),
            &[],
            &ConfigArgs::default(),
        ));
        assert!(message.contains("lisen"), "{message}");
        assert!(message.contains("cairn.toml, line 1"), "{message}");

        let file = "data_dir = \"d\"\n[log]\n\"segment.byte\" = 2048\n";
        let message = error(resolve(Some(file), &[], &ConfigArgs::default()));
        assert!(message.contains("\"segment.byte\""), "{message}");
        assert!(message.contains("segment.bytes"), "{message}");
    }

    #[test]
    fn bad_file_values_are_errors_naming_the_key() {
        for (file, expected) in [
            (
                "[log]\n\"segment.bytes\" = -5\n",
                "\"segment.bytes\" = -5 must not be negative",
            ),
            (
                "[log]\n\"segment.bytes\" = \"1g\"\n",
                "\"segment.bytes\" must be an integer",
            ),
            (
                "[log]\n\"segment.bytes\" = 99999999999\n",
                "\"segment.bytes\" = 99999999999 is too large",
            ),
            (
                "[log]\n\"retention.ms\" = -2\n",
                "\"retention.ms\" = -2 must be -1",
            ),
            ("listen = \"nowhere\"\n", "line 1"),
            ("data_dir = 5\n", "line 1"),
            ("data_dir = \"a\"\ndata_dir = \"b\"\n", "line 2"),
        ] {
            let message = error(resolve(Some(file), &[], &ConfigArgs::default()));
            assert!(message.contains(expected), "{file:?}: {message}");
            assert!(
                message.starts_with("invalid config file cairn.toml"),
                "{message}"
            );
        }
    }

    #[test]
    fn bad_env_values_are_errors_naming_the_variable() {
        for (name, value, expected) in [
            ("CAIRN_LOG_RETENTION_MS", "abc", "must be an integer"),
            ("CAIRN_LOG_RETENTION_MS", "-7", "must be -1"),
            ("CAIRN_LOG_SEGMENT_BYTES", "-1", "must not be negative"),
            (
                "CAIRN_LOG_SEGMENT_BYTE",
                "1",
                "unknown environment variable",
            ),
            ("CAIRN_LISTEN", "localhost", "expected IP:PORT"),
        ] {
            let message = error(resolve(None, &[(name, value)], &ConfigArgs::default()));
            assert!(message.contains(name), "{name}: {message}");
            assert!(message.contains(expected), "{name}: {message}");
        }
    }

    #[test]
    fn unknown_plain_variables_only_warn() {
        let loaded = resolve(None, &[("CAIRN_BIN", "/x")], &ConfigArgs::default())
            .expect("loads despite CAIRN_BIN");
        assert_eq!(
            loaded.warnings,
            ["ignoring unknown environment variable CAIRN_BIN"]
        );
    }

    #[test]
    fn validate_fails_fast_with_the_setting_named() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("CAIRN_LOG_SEGMENT_BYTES", "10")], "segment.bytes"),
            (&[("CAIRN_LOG_SEGMENT_MS", "0")], "segment.ms"),
            (&[("CAIRN_LOG_MAX_MESSAGE_BYTES", "3")], "max.message.bytes"),
            (&[("CAIRN_LISTEN", "0.0.0.0:9092")], "set advertise"),
            (
                &[("CAIRN_ADVERTISE", "host")],
                "advertise \"host\": no port",
            ),
            (&[("CAIRN_ADVERTISE", "0.0.0.0:9092")], "wildcard"),
            (&[("CAIRN_LOG_LEVEL", "verbose")], "log_level \"verbose\""),
        ];
        for (pairs, expected) in cases {
            let config = resolve(None, pairs, &ConfigArgs::default())
                .expect("parses")
                .config;
            let message = match config.validate() {
                Ok(()) => panic!("{pairs:?} should be invalid"),
                Err(err) => format!("{err:#}"),
            };
            assert!(message.contains(expected), "{pairs:?}: {message}");
        }
    }

    #[test]
    fn wildcard_listen_is_fine_with_an_advertised_address() {
        let pairs = [
            ("CAIRN_LISTEN", "0.0.0.0:9092"),
            ("CAIRN_ADVERTISE", "broker1.example:9092"),
        ];
        let config = resolve(None, &pairs, &ConfigArgs::default())
            .expect("parses")
            .config;
        config.validate().expect("valid");
        assert_eq!(config.advertise_addr(), "broker1.example:9092");
    }

    #[test]
    fn log_levels_and_directives_are_accepted() {
        for level in [
            "trace",
            "DEBUG",
            "info",
            "warn",
            "error",
            "off",
            "info,cairn=debug",
        ] {
            check_log_level(level).expect(level);
        }
    }
}
