//! Offset commits, OffsetDelete, retention and replay of `__consumer_offsets`.

use super::*;
use crate::{GroupMemberValue, GroupValue, OffsetValue, RecordError, RecordKey};

fn offset(offset: i64, commit_timestamp_ms: i64) -> OffsetValue {
    OffsetValue {
        offset,
        leader_epoch: 4,
        metadata: "meta".into(),
        commit_timestamp_ms,
    }
}

fn offset_key(group: &str, topic: &str, partition: i32) -> RecordKey {
    RecordKey::Offset {
        group: group.into(),
        topic: topic.into(),
        partition,
    }
}

fn group_key(group: &str) -> RecordKey {
    RecordKey::Group {
        group: group.into(),
    }
}

#[test]
fn commit_validation_follows_kafka() {
    let mut h = Harness::new();
    let now = h.now;
    // Without group management: fine for a group that does not exist, or an Empty one.
    assert_eq!(
        h.c.validate_offset_commit(now, "simple", -1, "", None),
        Ok(())
    );
    assert_eq!(h.c.validate_offset_commit(now, "", -1, "", None), Ok(()));
    // A generation for a group that does not exist.
    assert_eq!(
        h.c.validate_offset_commit(now, "simple", 3, "m", None),
        Err(GroupError::IllegalGeneration)
    );
    h.c.apply_offset_commit("simple", "t", 0, offset(10, now.wall_ms), None);
    assert_eq!(
        h.c.validate_offset_commit(now, "simple", -1, "", None),
        Ok(())
    );
    assert_eq!(
        h.c.committed_offset("simple", "t", 0),
        Some(&offset(10, now.wall_ms))
    );
    assert_eq!(
        h.c.validate_offset_commit(now, "simple", 0, "m", None),
        Err(GroupError::UnknownMemberId)
    );

    let (ids, generation) = h.stable_group("g", 2);
    let now = h.now;
    assert_eq!(
        h.c.validate_offset_commit(now, "g", generation, &ids[1], None),
        Ok(())
    );
    // Group management in use: only members commit.
    assert_eq!(
        h.c.validate_offset_commit(now, "g", -1, "", None),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        h.c.validate_offset_commit(now, "g", generation, "ghost", None),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        h.c.validate_offset_commit(now, "g", generation - 1, &ids[1], None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        h.c.validate_offset_commit(now, "g", -1, &ids[1], None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        h.c.validate_offset_commit(now, "g", generation, &ids[1], Some("inst")),
        Err(GroupError::UnknownMemberId)
    );

    // A commit is a sign of life: the member survives on commits alone.
    for _ in 0..4 {
        h.advance(SESSION_MS as u64 / 2);
        for id in &ids {
            assert_eq!(
                h.c.validate_offset_commit(h.now, "g", generation, id, None),
                Ok(())
            );
        }
    }
    assert_eq!(h.state("g"), Some(GroupState::Stable));

    // PreparingRebalance: the current generation may still commit.
    let t0 = h.join(join_req("g", &ids[0], "c"));
    assert_eq!(
        h.c.validate_offset_commit(h.now, "g", generation, &ids[1], None),
        Ok(())
    );
    // CompletingRebalance: not before the assignment.
    let t1 = h.join(join_req("g", &ids[1], "c"));
    let next = h.joined(t0).generation_id;
    assert!(h.join_answer(t1).is_some());
    assert_eq!(
        h.c.validate_offset_commit(h.now, "g", next, &ids[1], None),
        Err(GroupError::RebalanceInProgress)
    );
}

#[test]
fn offset_delete_follows_kafka() {
    let mut h = Harness::new();
    let parts = vec![("t".to_owned(), vec![0, 2]), ("other".to_owned(), vec![1])];
    assert_eq!(
        h.c.validate_offset_delete("nope", &parts),
        Err(GroupError::GroupIdNotFound)
    );
    assert_eq!(
        h.c.validate_offset_delete("", &parts),
        Err(GroupError::InvalidGroupId)
    );

    // A consumer group with members subscribed to "t".
    let (_, _) = h.stable_group("g", 1);
    h.c.apply_offset_commit("g", "t", 0, offset(1, 0), None);
    h.c.apply_offset_commit("g", "other", 1, offset(2, 0), None);
    assert_eq!(
        h.c.validate_offset_delete("g", &parts),
        Ok(vec![
            vec![Err(GroupError::GroupSubscribedToTopic); 2],
            vec![Ok(())]
        ])
    );
    h.c.apply_offset_delete("g", "other", 1);
    assert!(h.c.take_outputs().is_empty());
    assert_eq!(h.c.committed_offsets("g").len(), 1);

    // A non-consumer group with members refuses.
    let mut req = join_req("connect", "", "c");
    req.protocol_type = "connect".into();
    req.require_known_member_id = false;
    let _ = h.join(req);
    h.c.apply_offset_commit("connect", "t", 0, offset(1, 0), None);
    assert_eq!(
        h.c.validate_offset_delete("connect", &parts),
        Err(GroupError::NonEmptyGroup)
    );

    // An Empty group: anything goes; the last offset takes the group with it.
    h.c.apply_offset_commit("simple", "t", 0, offset(1, 0), None);
    assert_eq!(
        h.c.validate_offset_delete("simple", &parts),
        Ok(vec![vec![Ok(()), Ok(())], vec![Ok(())]])
    );
    h.c.apply_offset_delete("simple", "t", 0);
    assert!(h.c.describe_group("simple").is_none());
    // Never had a generation: no group record to tombstone.
    assert!(h.c.take_outputs().is_empty());

    // A consumer group that emptied: its record is tombstoned with its last offset.
    let (ids, _) = h.stable_group("gone", 1);
    h.c.apply_offset_commit("gone", "t", 0, offset(1, 0), None);
    let leave = [crate::LeavingMember {
        member_id: ids[0].clone(),
        group_instance_id: None,
    }];
    assert_eq!(h.c.leave(h.now, "gone", &leave), Ok(vec![Ok(())]));
    h.collect();
    assert_eq!(
        h.c.validate_offset_delete("gone", &parts),
        Ok(vec![vec![Ok(()), Ok(())], vec![Ok(())]])
    );
    h.c.apply_offset_delete("gone", "t", 0);
    assert!(h.c.describe_group("gone").is_none());
    assert_eq!(
        h.c.take_outputs(),
        vec![crate::Output::StoreGroup {
            group_id: "gone".into(),
            key: group_key("gone").encode().expect("encodes"),
            value: None,
        }]
    );
}

#[test]
fn retention_of_a_consumer_group_counts_from_when_it_became_empty() {
    let mut h = Harness::new();
    let retention = config().offsets_retention_ms;
    let (ids, generation) = h.stable_group("g", 1);
    let committed_at = h.now.wall_ms;
    assert_eq!(
        h.c.validate_offset_commit(h.now, "g", generation, &ids[0], None),
        Ok(())
    );
    h.c.apply_offset_commit("g", "t", 0, offset(5, committed_at), None);
    // Long after the commit, but the group has a member: nothing expires.
    assert!(h
        .c
        .expired_offsets(committed_at + 10 * retention)
        .is_empty());

    for _ in 0..12 {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", generation, &ids[0]), Ok(()));
    }
    let leave = [crate::LeavingMember {
        member_id: ids[0].clone(),
        group_instance_id: None,
    }];
    assert_eq!(h.c.leave(h.now, "g", &leave), Ok(vec![Ok(())]));
    h.collect();
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    let emptied_at = h.now.wall_ms;
    // The empty group's record says when it became empty.
    let record = GroupValue::decode(&h.stored.last().expect("stored").1).expect("decodes");
    assert_eq!(record.current_state_timestamp_ms, emptied_at);

    assert!(h.c.expired_offsets(committed_at + retention).is_empty());
    assert!(h.c.expired_offsets(emptied_at + retention - 1).is_empty());
    let keys = h.c.expired_offsets(emptied_at + retention);
    assert_eq!(keys, vec![offset_key("g", "t", 0), group_key("g")]);

    // The broker writes the tombstones, then replays them.
    for key in keys {
        let bytes = key.encode().expect("encodes");
        assert_eq!(h.c.replay(h.now, &bytes, None), Ok(()));
    }
    assert!(h.c.describe_group("g").is_none());
    assert!(h.c.committed_offsets("g").is_empty());
}

#[test]
fn retention_of_simple_and_stable_groups() {
    let mut h = Harness::new();
    let retention = config().offsets_retention_ms;
    let t0 = h.now.wall_ms;
    // Offsets only: each offset from its own commit.
    h.c.apply_offset_commit("simple", "t", 0, offset(1, t0), None);
    h.c.apply_offset_commit("simple", "t", 1, offset(1, t0 + 100), None);
    assert_eq!(
        h.c.expired_offsets(t0 + retention),
        vec![offset_key("simple", "t", 0)]
    );
    assert_eq!(
        h.c.expired_offsets(t0 + retention + 100),
        vec![
            offset_key("simple", "t", 0),
            offset_key("simple", "t", 1),
            group_key("simple")
        ]
    );
    // A stable consumer group loses only the offsets of topics it no longer subscribes to.
    let (_, _) = h.stable_group("g", 1);
    h.c.apply_offset_commit("g", "t", 0, offset(1, t0), None);
    h.c.apply_offset_commit("g", "gone", 0, offset(1, t0), None);
    let keys: Vec<RecordKey> =
        h.c.expired_offsets(t0 + retention)
            .into_iter()
            .filter(|k| k.group() == "g")
            .collect();
    assert_eq!(keys, vec![offset_key("g", "gone", 0)]);
}

#[test]
fn an_empty_group_without_offsets_is_retired() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", 1);
    let leave = [crate::LeavingMember {
        member_id: ids[0].clone(),
        group_instance_id: None,
    }];
    assert_eq!(h.c.leave(h.now, "g", &leave), Ok(vec![Ok(())]));
    assert_eq!(h.c.expired_offsets(h.now.wall_ms), vec![group_key("g")]);
    // A group whose KIP-394 member id is about to be used is kept.
    let _ = h.member_id("pending", "c");
    assert!(!h
        .c
        .expired_offsets(h.now.wall_ms)
        .contains(&group_key("pending")));
}

#[test]
fn replayed_group_records_restore_members_who_must_then_heartbeat() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 2);
    h.c.apply_offset_commit("g", "t", 3, offset(30, h.now.wall_ms), None);
    let log: Vec<(Vec<u8>, Option<Vec<u8>>)> = h
        .stored
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .chain(std::iter::once((
            offset_key("g", "t", 3).encode().expect("encodes"),
            Some(offset(30, h.now.wall_ms).encode().expect("encodes")),
        )))
        .collect();

    // A new coordinator loads the log.
    let mut fresh = Harness::new();
    fresh.now = h.now;
    for (key, value) in &log {
        assert_eq!(fresh.c.replay(fresh.now, key, value.as_deref()), Ok(()));
    }
    let d = fresh.c.describe_group("g").expect("loaded");
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.generation_id, generation);
    assert_eq!(d.leader.as_deref(), Some(ids[0].as_str()));
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.members[1].assignment, bytes::Bytes::from_static(b"p1"));
    assert_eq!(
        fresh.c.committed_offset("g", "t", 3),
        Some(&offset(30, h.now.wall_ms))
    );
    // A loaded member syncs and gets its assignment.
    let s = fresh.sync(sync_req("g", generation, &ids[1], Vec::new()));
    assert_eq!(fresh.synced(s).assignment, bytes::Bytes::from_static(b"p1"));

    // Only the first member heartbeats: the second expires and the group rebalances.
    for _ in 0..3 {
        fresh.advance(4_000);
        let _ = fresh.heartbeat("g", generation, &ids[0]);
    }
    assert_eq!(fresh.member_ids("g"), vec![ids[0].clone()]);
    assert_eq!(fresh.state("g"), Some(GroupState::PreparingRebalance));
}

#[test]
fn replay_applies_tombstones_in_log_order() {
    let mut h = Harness::new();
    let now = h.now;
    let key = offset_key("g", "t", 0).encode().expect("encodes");
    let v1 = offset(1, 5).encode().expect("encodes");
    let v2 = offset(2, 6).encode().expect("encodes");
    assert_eq!(h.c.replay(now, &key, Some(&v1)), Ok(()));
    assert_eq!(h.c.replay(now, &key, Some(&v2)), Ok(()));
    assert_eq!(h.c.committed_offset("g", "t", 0).map(|v| v.offset), Some(2));
    assert_eq!(h.c.replay(now, &key, None), Ok(()));
    assert!(
        h.c.describe_group("g").is_none(),
        "nothing left of the group"
    );
    assert_eq!(h.c.replay(now, &key, Some(&v1)), Ok(()));
    assert_eq!(h.c.committed_offset("g", "t", 0).map(|v| v.offset), Some(1));

    // An empty group record, then its tombstone: the offsets stay, the metadata goes.
    let empty = GroupValue {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: None,
        leader: None,
        current_state_timestamp_ms: 99,
        members: Vec::new(),
    };
    let gkey = group_key("g").encode().expect("encodes");
    let gval = empty.encode().expect("encodes");
    assert_eq!(h.c.replay(now, &gkey, Some(&gval)), Ok(()));
    let d = h.c.describe_group("g").expect("known");
    assert_eq!(
        (d.state, d.generation_id, d.protocol_type.as_str()),
        (GroupState::Empty, 7, "consumer")
    );
    assert_eq!(
        h.c.committed_offsets("g").len(),
        1,
        "offsets survive a group record"
    );
    assert_eq!(h.c.replay(now, &gkey, None), Ok(()));
    let d = h.c.describe_group("g").expect("offsets keep it");
    assert_eq!((d.generation_id, d.protocol_type.as_str()), (0, ""));
    assert_eq!(h.c.replay(now, &key, None), Ok(()));
    assert!(h.c.describe_group("g").is_none());
    // A tombstone for something unknown is harmless.
    assert_eq!(h.c.replay(now, &gkey, None), Ok(()));
}

#[test]
fn replay_refuses_malformed_records() {
    let mut h = Harness::new();
    let now = h.now;
    assert!(matches!(
        h.c.replay(now, b"\x00\x05", None),
        Err(RecordError::UnknownKeyVersion { version: 5 })
    ));
    let gkey = group_key("g").encode().expect("encodes");
    assert!(h.c.replay(now, &gkey, Some(b"\x00\x03\x00")).is_err());
    let member = |id: &str, instance: Option<&str>| GroupMemberValue {
        member_id: id.into(),
        group_instance_id: instance.map(str::to_owned),
        client_id: "c".into(),
        client_host: "h".into(),
        rebalance_timeout_ms: -1,
        session_timeout_ms: 10_000,
        subscription: Default::default(),
        assignment: Default::default(),
    };
    let mut value = GroupValue {
        protocol_type: "consumer".into(),
        generation: 1,
        protocol: None,
        leader: Some("a".into()),
        current_state_timestamp_ms: -1,
        members: vec![member("a", None)],
    };
    let replay = |h: &mut Harness, v: &GroupValue| {
        h.c.replay(now, &gkey, Some(&v.encode().expect("encodes")))
    };
    assert!(matches!(
        replay(&mut h, &value),
        Err(RecordError::InvalidGroup { .. })
    ));
    value.protocol = Some("range".into());
    value.members.push(member("a", None));
    assert!(matches!(
        replay(&mut h, &value),
        Err(RecordError::InvalidGroup { .. })
    ));
    value.members = vec![member("a", Some("i")), member("b", Some("i"))];
    assert!(matches!(
        replay(&mut h, &value),
        Err(RecordError::InvalidGroup { .. })
    ));
    assert!(h.c.describe_group("g").is_none());
    // A leader that is not a member is replaced by one; v0's missing rebalance timeout
    // becomes the session timeout.
    value.members = vec![member("a", None), member("b", None)];
    value.leader = Some("zz".into());
    assert_eq!(replay(&mut h, &value), Ok(()));
    let d = h.c.describe_group("g").expect("loaded");
    assert_eq!(d.leader.as_deref(), Some("a"));
    assert_eq!(d.state, GroupState::Stable);
}

#[test]
fn a_loaded_group_over_the_size_limit_rebalances() {
    let mut h = Harness::with_config(CoordinatorConfig {
        group_max_size: 1,
        ..config()
    });
    let member = |id: &str| GroupMemberValue {
        member_id: id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "h".into(),
        rebalance_timeout_ms: 30_000,
        session_timeout_ms: 10_000,
        subscription: Default::default(),
        assignment: Default::default(),
    };
    let value = GroupValue {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("a".into()),
        current_state_timestamp_ms: 1,
        members: vec![member("a"), member("b")],
    };
    let gkey = group_key("g").encode().expect("encodes");
    let now = h.now;
    assert_eq!(
        h.c.replay(now, &gkey, Some(&value.encode().expect("encodes"))),
        Ok(())
    );
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let mut req = join_req("g", "b", "c");
    req.protocols = vec![("range".into(), Default::default())];
    let t = h.join(req);
    let mut req = join_req("g", "a", "c");
    req.protocols = vec![("range".into(), Default::default())];
    let refused = h.join(req);
    assert_eq!(
        h.joined(refused).error,
        Some(GroupError::GroupMaxSizeReached)
    );
    assert_eq!(h.joined(t).members.len(), 1);
}
