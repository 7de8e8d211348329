use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config() -> BrokerConfig {
    BrokerConfig::new(
        "/data".into(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 9092)),
    )
}

#[test]
fn only_log_defaults_are_dynamic() {
    assert_eq!(
        check_all(&map(&[
            ("log.retention.ms", " 60000 "),
            ("message.max.bytes", "2000")
        ]))
        .expect("dynamic"),
        map(&[("log.retention.ms", "60000"), ("message.max.bytes", "2000")]),
        "values kept normalized"
    );
    match check_all(&map(&[
        ("num.partitions", "3"),
        ("auto.create.topics.enable", "false"),
        ("log.retention.ms", "1"),
    ])) {
        Err(BrokerConfigError::ReadOnly(names)) => {
            assert_eq!(names, ["auto.create.topics.enable", "num.partitions"])
        }
        other => panic!("{other:?}"),
    }
    let unknown = check_all(&map(&[("log.retention.hourz", "1")])).expect_err("unknown");
    assert!(
        unknown.to_string().contains("log.retention.hourz"),
        "{unknown}"
    );
    for (name, value) in [
        ("log.retention.ms", "soon"),
        ("log.retention.ms", "-2"),
        ("log.segment.bytes", "12"),
        ("log.roll.ms", "0"),
    ] {
        match check_all(&map(&[(name, value)])) {
            Err(BrokerConfigError::InvalidValue {
                name: n, value: v, ..
            }) => {
                assert_eq!((n.as_str(), v.as_str()), (name, value))
            }
            other => panic!("{name}={value}: {other:?}"),
        }
    }
    let read_only = check_all(&map(&[("max.connections", "5")])).expect_err("read-only");
    assert!(
        read_only
            .to_string()
            .starts_with("Cannot update these configs dynamically: max.connections"),
        "{read_only}"
    );
}

#[test]
fn per_broker_beats_cluster_default_beats_static() {
    let mut d = DynamicConfigs::default();
    d.set_scope(
        Scope::Cluster,
        map(&[("log.retention.ms", "1000"), ("log.segment.bytes", "4096")]),
    );
    d.set_scope(Scope::Broker, map(&[("log.retention.ms", "2000")]));
    let static_log = LogConfig {
        retention_ms: Some(5),
        flush_messages: Some(7),
        ..LogConfig::default()
    };
    let log = d.log_defaults(&static_log);
    assert_eq!(log.retention_ms, Some(2000));
    assert_eq!(log.segment_bytes, 4096);
    assert_eq!(log.flush_messages, Some(7), "static where nothing dynamic");
    d.set_scope(Scope::Cluster, map(&[("log.retention.ms", "-1")]));
    d.set_scope(Scope::Broker, BTreeMap::new());
    assert_eq!(
        d.log_defaults(&static_log).retention_ms,
        None,
        "-1: no limit"
    );
}

#[test]
fn file_round_trips_and_bad_entries_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        DynamicConfigs::load(dir.path()).expect("load"),
        DynamicConfigs::default(),
        "no file: nothing dynamic"
    );
    let mut d = DynamicConfigs::default();
    d.set_scope(Scope::Broker, map(&[("log.retention.ms", "60000")]));
    d.set_scope(Scope::Cluster, map(&[("log.flush.interval.messages", "1")]));
    d.save(dir.path()).expect("save");
    assert_eq!(DynamicConfigs::load(dir.path()).expect("load"), d);

    let lines: Vec<String> = [
        MAGIC,
        "broker log.retention.ms=5",
        "broker num.partitions=3",
        "default log.segment.bytes=12",
        "elsewhere log.roll.ms=1",
        "garbage",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let decoded = DynamicConfigs::decode(&lines);
    assert_eq!(
        decoded.scope(Scope::Broker),
        &map(&[("log.retention.ms", "5")])
    );
    assert!(decoded.scope(Scope::Cluster).is_empty());

    // A damaged file (CRC mismatch) is ignored rather than half-read.
    let path = dir.path().join(FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[MAGIC.len() + 10] ^= 1;
    std::fs::write(&path, bytes).expect("write");
    assert_eq!(
        DynamicConfigs::load(dir.path()).expect("load"),
        DynamicConfigs::default()
    );
}

#[test]
fn resource_names_are_this_broker_or_the_cluster() {
    assert_eq!(scope_of("", 1).expect("cluster"), Scope::Cluster);
    assert_eq!(scope_of("1", 1).expect("broker"), Scope::Broker);
    assert!(scope_of("2", 1)
        .expect_err("other broker")
        .to_string()
        .contains("expected 1"));
    assert!(scope_of("one", 1)
        .expect_err("not a number")
        .to_string()
        .contains("must be an integer"));
}

fn find<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not described"))
}

#[test]
fn broker_entries_have_kafkas_sources_read_only_flags_and_synonyms() {
    let mut c = config();
    c.num_partitions = 3;
    c.log.retention_ms = Some(3_600_000);
    c.static_configs = ["num.partitions", "log.retention.ms"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut d = DynamicConfigs::default();
    let view = View {
        config: &c,
        dynamic: &d,
    };
    let entries = view.broker();
    let partitions = find(&entries, "num.partitions");
    assert_eq!(
        (
            partitions.value.as_str(),
            partitions.source,
            partitions.read_only
        ),
        ("3", Source::StaticBroker, true)
    );
    assert_eq!(
        partitions
            .synonyms
            .iter()
            .map(|s| (s.value.as_str(), s.source))
            .collect::<Vec<_>>(),
        [("3", Source::StaticBroker), ("1", Source::Default)]
    );
    let auto = find(&entries, "auto.create.topics.enable");
    assert_eq!(
        (auto.value.as_str(), auto.source, auto.read_only),
        ("true", Source::Default, true)
    );
    let retention = find(&entries, "log.retention.ms");
    assert_eq!(
        (
            retention.value.as_str(),
            retention.source,
            retention.read_only
        ),
        ("3600000", Source::StaticBroker, false)
    );
    let segment = find(&entries, "log.segment.bytes");
    assert_eq!(
        (segment.value.as_str(), segment.source),
        ("1073741824", Source::Default)
    );
    assert_eq!(
        find(&entries, "log.retention.bytes").value,
        "-1",
        "no limit"
    );
    assert!(view.cluster_defaults().is_empty());

    d.set_scope(Scope::Cluster, map(&[("log.retention.ms", "60000")]));
    d.set_scope(Scope::Broker, map(&[("log.retention.ms", "120000")]));
    let view = View {
        config: &c,
        dynamic: &d,
    };
    let entries = view.broker();
    let retention = find(&entries, "log.retention.ms");
    assert_eq!(
        (retention.value.as_str(), retention.source),
        ("120000", Source::DynamicBroker)
    );
    assert_eq!(
        retention
            .synonyms
            .iter()
            .map(|s| (s.value.as_str(), s.source))
            .collect::<Vec<_>>(),
        [
            ("120000", Source::DynamicBroker),
            ("60000", Source::DynamicDefault),
            ("3600000", Source::StaticBroker),
            ("604800000", Source::Default),
        ]
    );
    let cluster = view.cluster_defaults();
    assert_eq!(cluster.len(), 1);
    assert_eq!(
        (
            cluster[0].name,
            cluster[0].value.as_str(),
            cluster[0].source
        ),
        ("log.retention.ms", "60000", Source::DynamicDefault)
    );
    assert_eq!(cluster[0].synonyms.len(), 1);
}

#[test]
fn topic_configs_inherit_through_the_broker_chain() {
    let c = config();
    let mut d = DynamicConfigs::default();
    d.set_scope(Scope::Cluster, map(&[("log.retention.ms", "60000")]));
    let view = View {
        config: &c,
        dynamic: &d,
    };
    let chain = view.topic_chain("retention.ms", "604800000");
    assert_eq!(
        chain
            .iter()
            .map(|s| (s.name, s.value.as_str(), s.source))
            .collect::<Vec<_>>(),
        [
            ("log.retention.ms", "60000", Source::DynamicDefault),
            ("log.retention.ms", "604800000", Source::Default),
        ]
    );
    let stored = view.topic_chain("cleanup.policy", "delete");
    assert_eq!(
        stored
            .iter()
            .map(|s| (s.name, s.value.as_str(), s.source))
            .collect::<Vec<_>>(),
        [("log.cleanup.policy", "delete", Source::Default)]
    );
    assert!(view.topic_chain("no.such", "").is_empty());
    assert_eq!(
        broker_name_of_log_setting("flush.messages"),
        Some("log.flush.interval.messages")
    );
    assert_eq!(broker_name_of_log_setting("max.open.segments"), None);
}
