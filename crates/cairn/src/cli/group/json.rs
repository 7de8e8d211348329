//! `group list` and `group describe` with `--output json`, for scripts: the same facts as
//! the tables, one JSON document on stdout. Offsets and lags are numbers; what is unknown is
//! `null` where the table prints `-` (a state ListGroups before v4 does not give, a lag
//! without a committed offset or a log end, an empty protocol, client id or host).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{GroupInfo, ListedGroup, MemberInfo, PartitionRow};

/// `group list`: an array of `{group, state, protocol_type}`, in the order given (the
/// caller's set is sorted by group id).
pub(crate) fn group_list<'a>(groups: impl IntoIterator<Item = &'a ListedGroup>) -> Value {
    groups
        .into_iter()
        .map(|g| {
            json!({
                "group": g.id,
                "state": g.state,
                "protocol_type": non_empty(&g.protocol_type),
            })
        })
        .collect()
}

/// `group describe`: one object with the group's state, protocol, coordinator, members
/// (with their assignments) and partitions (committed offset, log end offset, lag, owner),
/// and the total of the known lags.
pub(crate) fn description(
    info: &GroupInfo,
    coordinator: (i32, &str),
    rows: &[PartitionRow],
) -> Value {
    let (node_id, address) = coordinator;
    let partitions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed_offset": r.committed,
                "log_end_offset": r.log_end,
                "lag": r.lag(),
                "member_id": r.owner,
            })
        })
        .collect();
    json!({
        "group": info.id,
        "state": info.state,
        "protocol_type": non_empty(&info.protocol_type),
        "protocol": non_empty(&info.protocol),
        "coordinator": { "node_id": node_id, "address": address },
        "members": info.members.iter().map(member).collect::<Vec<_>>(),
        "partitions": partitions,
        "total_lag": rows.iter().filter_map(PartitionRow::lag).sum::<i64>(),
    })
}

/// A member; `assignment` lists `{topic, partitions}` by topic, or is `null` with
/// `assignment_error` saying why when the assignment does not decode.
fn member(m: &MemberInfo) -> Value {
    let (assignment, error) = match &m.assignment {
        Ok(pairs) => {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in pairs {
                by_topic.entry(topic).or_default().push(*partition);
            }
            let topics: Vec<Value> = by_topic
                .into_iter()
                .map(|(topic, partitions)| json!({ "topic": topic, "partitions": partitions }))
                .collect();
            (Value::Array(topics), None)
        }
        Err(e) => (Value::Null, Some(e.as_str())),
    };
    json!({
        "member_id": m.member_id,
        "instance_id": m.instance_id,
        "client_id": non_empty(&m.client_id),
        "host": non_empty(&m.host),
        "assignment": assignment,
        "assignment_error": error,
    })
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_gives_null_for_what_the_broker_did_not_say() {
        let groups = [
            ListedGroup {
                id: "a".to_string(),
                state: Some("Stable".to_string()),
                protocol_type: "consumer".to_string(),
            },
            ListedGroup {
                id: "b".to_string(),
                state: None,
                protocol_type: String::new(),
            },
        ];
        assert_eq!(
            group_list(&groups),
            json!([
                { "group": "a", "state": "Stable", "protocol_type": "consumer" },
                { "group": "b", "state": null, "protocol_type": null },
            ])
        );
        assert_eq!(group_list(&[]), json!([]));
    }

    #[test]
    fn description_has_members_partitions_and_lag() {
        let info = GroupInfo {
            id: "g".to_string(),
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: "range".to_string(),
            members: vec![
                MemberInfo {
                    member_id: "m1".to_string(),
                    instance_id: Some("static-1".to_string()),
                    client_id: "rdkafka".to_string(),
                    host: "/127.0.0.1".to_string(),
                    assignment: Ok(vec![
                        ("t".to_string(), 0),
                        ("t".to_string(), 1),
                        ("u".to_string(), 0),
                    ]),
                },
                MemberInfo {
                    member_id: "m2".to_string(),
                    instance_id: None,
                    client_id: String::new(),
                    host: "/127.0.0.1".to_string(),
                    assignment: Err("the assignment is truncated".to_string()),
                },
            ],
        };
        let row = |topic: &str, partition, committed, log_end, owner: Option<&str>| PartitionRow {
            topic: topic.to_string(),
            partition,
            committed,
            log_end,
            owner: owner.map(str::to_string),
        };
        let rows = [
            row("t", 0, Some(3), Some(10), Some("m1")),
            row("t", 1, None, Some(4), Some("m1")),
            row("u", 0, Some(5), Some(6), Some("m1")),
            row("gone", 0, Some(8), None, None),
        ];
        assert_eq!(
            description(&info, (1, "127.0.0.1:9092"), &rows),
            json!({
                "group": "g",
                "state": "Stable",
                "protocol_type": "consumer",
                "protocol": "range",
                "coordinator": { "node_id": 1, "address": "127.0.0.1:9092" },
                "members": [
                    {
                        "member_id": "m1",
                        "instance_id": "static-1",
                        "client_id": "rdkafka",
                        "host": "/127.0.0.1",
                        "assignment": [
                            { "topic": "t", "partitions": [0, 1] },
                            { "topic": "u", "partitions": [0] },
                        ],
                        "assignment_error": null,
                    },
                    {
                        "member_id": "m2",
                        "instance_id": null,
                        "client_id": null,
                        "host": "/127.0.0.1",
                        "assignment": null,
                        "assignment_error": "the assignment is truncated",
                    },
                ],
                "partitions": [
                    { "topic": "t", "partition": 0, "committed_offset": 3,
                      "log_end_offset": 10, "lag": 7, "member_id": "m1" },
                    { "topic": "t", "partition": 1, "committed_offset": null,
                      "log_end_offset": 4, "lag": null, "member_id": "m1" },
                    { "topic": "u", "partition": 0, "committed_offset": 5,
                      "log_end_offset": 6, "lag": 1, "member_id": "m1" },
                    { "topic": "gone", "partition": 0, "committed_offset": 8,
                      "log_end_offset": null, "lag": null, "member_id": null },
                ],
                "total_lag": 8,
            })
        );
    }

    #[test]
    fn an_empty_group_has_no_protocol() {
        let info = GroupInfo {
            id: "g".to_string(),
            state: "Empty".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: String::new(),
            members: vec![],
        };
        let value = description(&info, (2, "h:9"), &[]);
        assert_eq!(value["protocol"], Value::Null);
        assert_eq!(value["members"], json!([]));
        assert_eq!(value["total_lag"], json!(0));
    }
}
