use super::*;
use crate::cli::GroupArgs;
use bytes::{BufMut as _, BytesMut};
use cairn_protocol::kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use cairn_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use cairn_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator as Found;
use cairn_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use cairn_protocol::kafka_protocol::messages::{BrokerId, TopicName};
use cairn_protocol::kafka_protocol::protocol::Encodable as _;
use clap::Parser;

fn s(text: &str) -> StrBytes {
    str_bytes(text)
}

/// A consumer-protocol assignment as a consumer's leader writes it: version, then body.
fn assignment_bytes(version: i16, partitions: &[(&str, &[i32])]) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(topic, list)| {
                TopicPartition::default()
                    .with_topic(TopicName(s(topic)))
                    .with_partitions(list.to_vec())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    assignment
        .encode(&mut buf, version.min(3))
        .expect("the assignment encodes");
    buf.freeze()
}

#[test]
fn requests_carry_the_group_in_the_versions_fields() {
    let old = find_coordinator_request(3, "g");
    assert_eq!((old.key.as_str(), old.key_type), ("g", 0));
    let new = find_coordinator_request(4, "g");
    assert_eq!(new.coordinator_keys, vec![s("g")]);
    assert!(new.key.is_empty());

    let old = offset_fetch_request(7, "g", None);
    assert_eq!((old.group_id.0.as_str(), old.topics.is_none()), ("g", true));
    let new = offset_fetch_request(8, "g", Some(("t", &[2])));
    let group = &new.groups[0];
    assert_eq!(group.group_id.0.as_str(), "g");
    assert_eq!(
        group.topics.as_ref().expect("topics")[0].partition_indexes,
        [2]
    );

    let commit = offset_commit_request(9, "g", "t", &[(3, 42)]);
    assert_eq!(commit.generation_id_or_member_epoch, -1);
    assert!(commit.member_id.is_empty());
    let partition = &commit.topics[0].partitions[0];
    assert_eq!(
        (partition.partition_index, partition.committed_offset),
        (3, 42)
    );
}

#[test]
fn new_offsets_are_clamped_to_the_log() {
    let p = PartitionOffsets {
        committed: Some(10),
        earliest: 5,
        latest: 20,
        by_time: None,
    };
    assert_eq!(ResetSpec::Earliest.new_offset(p), Ok(5));
    assert_eq!(ResetSpec::Latest.new_offset(p), Ok(20));
    assert_eq!(ResetSpec::Offset(12).new_offset(p), Ok(12));
    assert_eq!(ResetSpec::Offset(0).new_offset(p), Ok(5));
    assert_eq!(ResetSpec::Offset(99).new_offset(p), Ok(20));
    assert_eq!(ResetSpec::ShiftBy(-3).new_offset(p), Ok(7));
    assert_eq!(ResetSpec::ShiftBy(-30).new_offset(p), Ok(5));
    assert_eq!(ResetSpec::ShiftBy(4).new_offset(p), Ok(14));
    assert_eq!(ResetSpec::ShiftBy(400).new_offset(p), Ok(20));
    assert_eq!(ResetSpec::ShiftBy(i64::MAX).new_offset(p), Ok(20));
    assert_eq!(ResetSpec::ShiftBy(0).new_offset(p), Ok(10));
    // A committed offset outside the log is moved inside it even with a zero shift.
    let beyond = PartitionOffsets {
        committed: Some(50),
        ..p
    };
    assert_eq!(ResetSpec::ShiftBy(0).new_offset(beyond), Ok(20));

    let none = PartitionOffsets {
        committed: None,
        ..p
    };
    assert!(ResetSpec::ShiftBy(1).new_offset(none).is_err());
    assert_eq!(ResetSpec::Earliest.new_offset(none), Ok(5));

    let at = |by_time| PartitionOffsets {
        by_time: Some(by_time),
        ..p
    };
    assert_eq!(ResetSpec::Datetime(1).new_offset(at(8)), Ok(8));
    // No record at or after the time: the end.
    assert_eq!(ResetSpec::Datetime(1).new_offset(at(-1)), Ok(20));
    assert_eq!(ResetSpec::Datetime(1).new_offset(p), Ok(20));

    // An empty log: everything is its one offset.
    let empty = PartitionOffsets {
        committed: Some(3),
        earliest: 7,
        latest: 7,
        by_time: Some(-1),
    };
    for spec in [
        ResetSpec::Earliest,
        ResetSpec::Latest,
        ResetSpec::Offset(0),
        ResetSpec::Datetime(0),
        ResetSpec::ShiftBy(-1),
    ] {
        assert_eq!(spec.new_offset(empty), Ok(7), "{spec:?}");
    }
}

#[test]
fn assignments_decode_in_every_version() {
    for version in 0..=3 {
        let bytes = assignment_bytes(version, &[("b", &[2, 0]), ("a", &[1])]);
        assert_eq!(
            decode_assignment(&bytes),
            Ok(vec![
                ("a".to_string(), 1),
                ("b".to_string(), 0),
                ("b".to_string(), 2)
            ]),
            "v{version}"
        );
    }
    // A newer version is read as the newest known (its extra fields come last).
    let mut newer = BytesMut::from(&assignment_bytes(3, &[("t", &[4])])[..]);
    newer[..2].copy_from_slice(&7i16.to_be_bytes());
    newer.extend_from_slice(b"later fields");
    assert_eq!(decode_assignment(&newer), Ok(vec![("t".to_string(), 4)]));

    assert_eq!(decode_assignment(&[]), Ok(vec![]));
    assert!(decode_assignment(&[0]).is_err());
    assert!(decode_assignment(&[0xff, 0xff, 0, 0, 0, 0]).is_err());
    // Claims one topic, then ends.
    assert!(decode_assignment(&[0, 0, 0, 0, 0, 1]).is_err());
}

#[test]
fn tables_are_aligned_without_trailing_spaces() {
    let rows = vec![
        vec!["orders".to_string(), "0".to_string(), "-".to_string()],
        vec!["x".to_string(), "10".to_string(), "long value".to_string()],
    ];
    assert_eq!(
        format_table(&["TOPIC", "PARTITION", "LAG"], &rows),
        "TOPIC   PARTITION  LAG\n\
         orders  0          -\n\
         x       10         long value\n"
    );
    assert_eq!(format_table(&["A", "B"], &[]), "A  B\n");
}

#[test]
fn group_list_shows_unknown_states_as_dashes() {
    let groups = [
        ListedGroup {
            id: "a".to_string(),
            state: Some("Stable".to_string()),
            protocol_type: "consumer".to_string(),
        },
        ListedGroup {
            id: "bb".to_string(),
            state: None,
            protocol_type: String::new(),
        },
    ];
    assert_eq!(
        format_group_list(&groups),
        "GROUP  STATE   PROTOCOL-TYPE\n\
         a      Stable  consumer\n\
         bb     -       -\n"
    );
}

#[test]
fn states_parse_in_any_case() {
    assert_eq!(parse_state("stable"), Ok("Stable".to_string()));
    assert_eq!(
        parse_state("PREPARINGREBALANCE"),
        Ok("PreparingRebalance".to_string())
    );
    assert_eq!(parse_state(" Empty "), Ok("Empty".to_string()));
    assert!(parse_state("running").is_err());
}

fn described(
    state: &str,
    protocol_type: &str,
    members: Vec<DescribedGroupMember>,
) -> DescribeGroupsResponse {
    DescribeGroupsResponse::default().with_groups(vec![DescribedGroup::default()
        .with_group_id(group_id("g"))
        .with_group_state(s(state))
        .with_protocol_type(s(protocol_type))
        .with_protocol_data(s("range"))
        .with_members(members)])
}

fn member(id: &str, assignment: Bytes) -> DescribedGroupMember {
    DescribedGroupMember::default()
        .with_member_id(s(id))
        .with_client_id(s("rdkafka"))
        .with_client_host(s("/127.0.0.1"))
        .with_member_assignment(assignment)
}

#[test]
fn described_groups_decode_consumer_assignments() {
    let response = described(
        "Stable",
        "consumer",
        vec![
            member("m2", assignment_bytes(1, &[("t", &[1])])),
            member("m1", assignment_bytes(0, &[("t", &[0, 2])]))
                .with_group_instance_id(Some(s("static-1"))),
            member("m3", Bytes::from_static(b"\x00")),
        ],
    );
    let info = group_info(&response, "g").expect("described");
    assert_eq!(
        (info.state.as_str(), info.protocol.as_str()),
        ("Stable", "range")
    );
    assert!(!info.is_inactive());
    let ids: Vec<&str> = info.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"]);
    assert_eq!(info.members[0].instance_id.as_deref(), Some("static-1"));
    assert_eq!(
        info.members[0].assignment,
        Ok(vec![("t".to_string(), 0), ("t".to_string(), 2)])
    );
    assert!(info.members[2].assignment.is_err());

    // Another protocol's assignment is not read.
    let connect = described(
        "Stable",
        "connect",
        vec![member("w", Bytes::from_static(b"xyz"))],
    );
    assert_eq!(
        group_info(&connect, "g").expect("described").members[0].assignment,
        Ok(vec![])
    );
    assert!(group_info(&described("Empty", "", vec![]), "g")
        .expect("described")
        .is_inactive());
    assert!(group_info(&described("Dead", "", vec![]), "g")
        .expect("described")
        .is_inactive());
    assert!(group_info(&described("Dead", "", vec![]), "other").is_err());
    let mut failed = described("Dead", "", vec![]);
    failed.groups[0].error_code = ErrorCode::CoordinatorNotAvailable.code();
    let err = group_info(&failed, "g").expect_err("an error");
    assert!(
        format!("{err:#}").contains("COORDINATOR_NOT_AVAILABLE"),
        "{err:#}"
    );
}

#[test]
fn description_lists_group_members_and_partitions() {
    let info = GroupInfo {
        id: "g".to_string(),
        state: "Stable".to_string(),
        protocol_type: "consumer".to_string(),
        protocol: "range".to_string(),
        members: vec![MemberInfo {
            member_id: "m1".to_string(),
            instance_id: None,
            client_id: "rdkafka".to_string(),
            host: "/127.0.0.1".to_string(),
            assignment: Ok(vec![
                ("t".to_string(), 0),
                ("t".to_string(), 1),
                ("u".to_string(), 0),
            ]),
        }],
    };
    let rows = [
        PartitionRow {
            topic: "t".to_string(),
            partition: 0,
            committed: Some(3),
            log_end: Some(10),
            owner: Some("m1".to_string()),
        },
        PartitionRow {
            topic: "t".to_string(),
            partition: 1,
            committed: None,
            log_end: Some(4),
            owner: Some("m1".to_string()),
        },
        PartitionRow {
            topic: "gone".to_string(),
            partition: 0,
            committed: Some(8),
            log_end: None,
            owner: None,
        },
    ];
    assert_eq!(rows[0].lag(), Some(7));
    assert_eq!(
        format_description(&info, "1 (127.0.0.1:9092)".to_string(), &rows),
        "GROUP  STATE   PROTOCOL-TYPE  PROTOCOL  MEMBERS  COORDINATOR\n\
         g      Stable  consumer       range     1        1 (127.0.0.1:9092)\n\
         \n\
         MEMBER-ID  INSTANCE-ID  CLIENT-ID  HOST        ASSIGNMENT\n\
         m1         -            rdkafka    /127.0.0.1  t(0,1),u(0)\n\
         \n\
         TOPIC  PARTITION  COMMITTED-OFFSET  LOG-END-OFFSET  LAG  MEMBER-ID\n\
         t      0          3                 10              7    m1\n\
         t      1          -                 4               -    m1\n\
         gone   0          8                 -               -    -\n"
    );
    assert_eq!(format_assignment(&[]), "-");
}

#[test]
fn reset_plan_table() {
    assert_eq!(
        format_reset_plan("t", &[(0, Some(5), 2), (1, None, 0)]),
        "TOPIC  PARTITION  CURRENT-OFFSET  NEW-OFFSET\n\
         t      0          5               2\n\
         t      1          -               0\n"
    );
}

#[test]
fn coordinators_are_read_from_either_shape() {
    let old = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(3))
        .with_host(s("h"))
        .with_port(9092);
    assert_eq!(coordinator_of(&old, "g"), Ok((3, "h:9092".to_string())));
    let new = FindCoordinatorResponse::default().with_coordinators(vec![
        Found::default()
            .with_key(s("other"))
            .with_node_id(BrokerId(1))
            .with_host(s("x"))
            .with_port(1),
        Found::default()
            .with_key(s("g"))
            .with_node_id(BrokerId(2))
            .with_host(s("y"))
            .with_port(2),
    ]);
    assert_eq!(coordinator_of(&new, "g"), Ok((2, "y:2".to_string())));
    let loading = FindCoordinatorResponse::default().with_coordinators(vec![Found::default()
        .with_key(s("g"))
        .with_error_code(ErrorCode::CoordinatorNotAvailable.code())
        .with_node_id(BrokerId(-1))]);
    let err = coordinator_of(&loading, "g").expect_err("not available");
    assert!(is_coordinator_retriable(err.code));
    let nobody = FindCoordinatorResponse::default().with_node_id(BrokerId(-1));
    assert!(coordinator_of(&nobody, "g").is_err());
    assert!(!is_coordinator_retriable(ErrorCode::GroupIdNotFound.code()));
}

#[test]
fn committed_offsets_are_read_from_either_shape() {
    let old = OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
        .with_name(topic_name("t"))
        .with_partitions(vec![
            OffsetFetchResponsePartition::default()
                .with_partition_index(0)
                .with_committed_offset(5),
            OffsetFetchResponsePartition::default()
                .with_partition_index(1)
                .with_committed_offset(-1),
        ])]);
    assert_eq!(
        committed_offsets(&old),
        Ok(BTreeMap::from([(("t".to_string(), 0), 5)]))
    );
    let new = OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
        .with_group_id(group_id("g"))
        .with_topics(vec![OffsetFetchResponseTopics::default()
            .with_name(topic_name("u"))
            .with_partitions(vec![OffsetFetchResponsePartitions::default()
                .with_partition_index(2)
                .with_committed_offset(9)])])]);
    assert_eq!(
        committed_offsets(&new),
        Ok(BTreeMap::from([(("u".to_string(), 2), 9)]))
    );
    let loading = OffsetFetchResponse::default()
        .with_groups(vec![OffsetFetchResponseGroup::default()
            .with_error_code(ErrorCode::CoordinatorLoadInProgress.code())]);
    assert_eq!(
        offset_fetch_group_error(&loading),
        ErrorCode::CoordinatorLoadInProgress.code()
    );
    assert!(committed_offsets(&loading).is_err());
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Group(GroupArgs),
}

fn parse(args: &[&str]) -> Result<GroupCommand, clap::Error> {
    Cli::try_parse_from(["cairn", "group"].into_iter().chain(args.iter().copied())).map(|cli| {
        match cli.command {
            Command::Group(group) => group.command,
        }
    })
}

fn reset_spec(args: &[&str]) -> Result<ResetSpec, String> {
    match parse(args).map_err(|e| e.to_string())? {
        GroupCommand::ResetOffsets { to, .. } => {
            ResetSpec::from_args(&to).map_err(|e| e.to_string())
        }
        other => Err(format!("parsed as {other:?}")),
    }
}

#[test]
fn command_lines() {
    let base = ["reset-offsets", "g", "--topic", "t"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    assert_eq!(
        reset_spec(&with(&["--to-earliest"])),
        Ok(ResetSpec::Earliest)
    );
    assert_eq!(reset_spec(&with(&["--to-latest"])), Ok(ResetSpec::Latest));
    assert_eq!(
        reset_spec(&with(&["--to-offset", "7"])),
        Ok(ResetSpec::Offset(7))
    );
    assert_eq!(
        reset_spec(&with(&["--shift-by", "-3"])),
        Ok(ResetSpec::ShiftBy(-3))
    );
    assert_eq!(
        reset_spec(&with(&["--shift-by=4"])),
        Ok(ResetSpec::ShiftBy(4))
    );
    assert_eq!(
        reset_spec(&with(&["--to-datetime", "2026-11-23T10:00:00Z"])),
        Ok(ResetSpec::Datetime(1_795_428_000_000))
    );
    assert_eq!(
        reset_spec(&with(&["--to-datetime", "1795428000000"])),
        Ok(ResetSpec::Datetime(1_795_428_000_000))
    );
    // Exactly one target.
    assert!(parse(&base).is_err());
    assert!(parse(&with(&["--to-earliest", "--to-latest"])).is_err());
    assert!(parse(&with(&["--to-offset", "-1"])).is_err());
    assert!(parse(&with(&["--to-datetime", "yesterday"])).is_err());

    let Ok(GroupCommand::ResetOffsets {
        partitions,
        execute,
        ..
    }) = parse(&with(&[
        "--to-earliest",
        "--partition",
        "0",
        "--partition",
        "2",
        "--execute",
    ]))
    else {
        panic!("reset-offsets parses");
    };
    assert_eq!((partitions, execute), (vec![0, 2], true));
    let Ok(GroupCommand::ResetOffsets { execute, .. }) = parse(&with(&["--to-earliest"])) else {
        panic!("reset-offsets parses");
    };
    assert!(!execute, "dry run by default");

    let Ok(GroupCommand::List { states, output }) =
        parse(&["list", "--state", "stable", "--state", "Empty"])
    else {
        panic!("list parses");
    };
    assert_eq!(states, ["Stable", "Empty"]);
    assert_eq!(output, Output::Table);
    assert!(matches!(
        parse(&["list", "--output", "json"]),
        Ok(GroupCommand::List {
            output: Output::Json,
            ..
        })
    ));
    assert!(matches!(
        parse(&["describe", "g", "--output", "json"]),
        Ok(GroupCommand::Describe { output: Output::Json, ref group }) if group == "g"
    ));
    assert!(parse(&["describe", "g", "--output", "yaml"]).is_err());
    assert!(parse(&["list", "--state", "bogus"]).is_err());
    assert!(
        matches!(parse(&["describe", "g"]), Ok(GroupCommand::Describe { group, output: Output::Table }) if group == "g")
    );
    assert!(matches!(parse(&["delete", "g"]), Ok(GroupCommand::Delete { group }) if group == "g"));
    assert!(parse(&["describe"]).is_err());
}
