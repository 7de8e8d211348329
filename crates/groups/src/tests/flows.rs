//! Join, sync, heartbeat, leave, expiry and timeouts of dynamic members.

use bytes::Bytes;

use super::*;
use crate::{GroupValue, LeavingMember, RecordKey};

#[test]
fn one_member_joins_syncs_and_heartbeats() {
    let mut h = Harness::new();
    let id = h.member_id("g", "client");
    assert_eq!(h.state("g"), Some(GroupState::Empty));

    let t = h.join(join_req("g", &id, "client"));
    assert!(h.join_answer(t).is_none(), "waits for the initial delay");
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(h.c.next_deadline(), Some(h.now.mono_ms + DELAY_MS));
    h.advance(DELAY_MS - 1);
    assert!(h.join_answer(t).is_none());
    h.advance(1);
    let answer = h.joined(t).clone();
    assert_eq!(answer.error, None);
    assert_eq!(answer.generation_id, 1);
    assert_eq!(answer.leader, id);
    assert_eq!(answer.member_id, id);
    assert_eq!(answer.protocol_name.as_deref(), Some("range"));
    assert_eq!(answer.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(answer.members.len(), 1);
    assert_eq!(answer.members[0].metadata, consumer_metadata(&["t"]));
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
    assert_eq!(h.heartbeat("g", 1, &id), Ok(()));

    let s = h.sync(sync_req(
        "g",
        1,
        &id,
        vec![(id.clone(), Bytes::from_static(b"a"))],
    ));
    assert_eq!(h.synced(s).assignment, Bytes::from_static(b"a"));
    assert_eq!(h.synced(s).protocol_name.as_deref(), Some("range"));
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // The generation's record was emitted, with the assignment.
    let (key, value) = h.stored.last().expect("stored").clone();
    assert_eq!(
        RecordKey::decode(&key),
        Ok(RecordKey::Group { group: "g".into() })
    );
    let value = GroupValue::decode(&value).expect("decodes");
    assert_eq!(value.generation, 1);
    assert_eq!(value.leader.as_deref(), Some(id.as_str()));
    assert_eq!(value.members[0].assignment, Bytes::from_static(b"a"));
    assert_eq!(value.members[0].subscription, consumer_metadata(&["t"]));

    // Heartbeats keep it alive well past the session timeout.
    for _ in 0..10 {
        h.advance(SESSION_MS as u64 / 2);
        assert_eq!(h.heartbeat("g", 1, &id), Ok(()));
    }
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // A sync in Stable returns the stored assignment.
    let s = h.sync(sync_req("g", 1, &id, Vec::new()));
    assert_eq!(h.synced(s).assignment, Bytes::from_static(b"a"));
}

#[test]
fn three_members_and_the_initial_delay_extension() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..3).map(|i| h.member_id("g", &format!("c{i}"))).collect();
    let start = h.now.mono_ms;
    let t0 = h.join(join_req("g", &ids[0], "c0"));
    h.advance(2_000);
    // A new member during the initial delay extends it once more.
    let t1 = h.join(join_req("g", &ids[1], "c1"));
    h.advance(1_000);
    assert!(h.join_answer(t0).is_none(), "extended past the first delay");
    assert_eq!(h.c.next_deadline(), Some(start + 2 * DELAY_MS));
    let t2 = h.join(join_req("g", &ids[2], "c2"));
    h.advance(DELAY_MS);
    // The third member arrived during the second delay: a third one.
    assert!(h.join_answer(t0).is_none());
    h.advance(DELAY_MS);
    let answers: Vec<_> = [t0, t1, t2].iter().map(|t| h.joined(*t).clone()).collect();
    assert_eq!(h.now.mono_ms, start + 3 * DELAY_MS);
    for a in &answers {
        assert_eq!(a.generation_id, 1);
        assert_eq!(a.leader, ids[0], "the first member leads");
    }
    assert_eq!(answers[0].members.len(), 3);
    assert!(answers[1].members.is_empty() && answers[2].members.is_empty());
}

#[test]
fn initial_delay_is_capped_by_the_rebalance_timeout() {
    let mut h = Harness::new();
    let mut tokens = Vec::new();
    let start = h.now.mono_ms;
    // A new member every 2 s for a long time: the join phase still ends within the rebalance
    // timeout (plus one delay of rounding).
    let mut first_answer = None;
    for i in 0..40 {
        let mut req = join_req("g", "", &format!("c{i}"));
        req.require_known_member_id = false;
        tokens.push(h.join(req));
        h.advance(2_000);
        if first_answer.is_none() && h.join_answer(tokens[0]).is_some() {
            first_answer = Some(h.now.mono_ms - start);
        }
    }
    // Ticks come every 2 s here, so up to 2 s late.
    let elapsed = first_answer.expect("the join phase ended");
    assert!(elapsed <= REBALANCE_MS as u64 + 2_000, "{elapsed}");
}

#[test]
fn old_clients_join_without_member_id_round_trip() {
    let mut h = Harness::new();
    let mut req = join_req("g", "", "old");
    req.require_known_member_id = false;
    let t = h.join(req);
    h.advance(DELAY_MS);
    let answer = h.joined(t);
    assert_eq!(answer.error, None);
    assert!(answer.member_id.starts_with("old-"));
    assert_eq!(answer.leader, answer.member_id);
}

#[test]
fn join_errors() {
    let mut h = Harness::new();
    let t = h.join(join_req("", "", "c"));
    assert_eq!(h.joined(t).error, Some(GroupError::InvalidGroupId));

    let mut req = join_req("g", "", "c");
    req.session_timeout_ms = 999;
    let t = h.join(req);
    assert_eq!(h.joined(t).error, Some(GroupError::InvalidSessionTimeout));
    let mut req = join_req("g", "", "c");
    req.session_timeout_ms = 60_001;
    let t = h.join(req);
    assert_eq!(h.joined(t).error, Some(GroupError::InvalidSessionTimeout));

    // A member id for a group that does not exist.
    let t = h.join(join_req("g", "ghost", "c"));
    assert_eq!(h.joined(t).error, Some(GroupError::UnknownMemberId));
    assert_eq!(h.joined(t).member_id, "ghost");

    // No protocol type, no protocols.
    let mut req = join_req("g", "", "c");
    req.protocol_type = String::new();
    let t = h.join(req);
    assert_eq!(
        h.joined(t).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut req = join_req("g", "", "c");
    req.protocols.clear();
    let t = h.join(req);
    assert_eq!(
        h.joined(t).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    // Failed first joins leave no group behind.
    assert!(h.c.list_groups(&[]).is_empty());

    // Against a group with members: another protocol type, or no common protocol.
    let (ids, _) = h.stable_group("g", 1);
    let mut req = join_req("g", "", "c");
    req.protocol_type = "connect".into();
    let t = h.join(req);
    assert_eq!(
        h.joined(t).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut req = join_req("g", "", "c");
    req.protocols = vec![("sticky".into(), Bytes::new())];
    let t = h.join(req);
    assert_eq!(
        h.joined(t).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    // An unknown member id of an existing group.
    let t = h.join(join_req("g", "ghost", "c"));
    assert_eq!(h.joined(t).error, Some(GroupError::UnknownMemberId));
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    assert_eq!(h.member_ids("g"), ids);

    // Strings that do not fit a record.
    let mut req = join_req("g2", "", &"x".repeat(40_000));
    req.require_known_member_id = false;
    let t = h.join(req);
    assert_eq!(h.joined(t).error, Some(GroupError::InvalidRequest));
}

#[test]
fn group_max_size_is_enforced() {
    let mut h = Harness::with_config(CoordinatorConfig {
        group_max_size: 2,
        ..config()
    });
    let ids: Vec<String> = (0..3).map(|i| h.member_id("g", &format!("c{i}"))).collect();
    let t0 = h.join(join_req("g", &ids[0], "c"));
    let t1 = h.join(join_req("g", &ids[1], "c"));
    let t2 = h.join(join_req("g", &ids[2], "c"));
    let refused = h.joined(t2);
    assert_eq!(refused.error, Some(GroupError::GroupMaxSizeReached));
    assert_eq!(refused.member_id, "");
    h.settle_joins(&[t0, t1]);
    assert_eq!(h.joined(t0).members.len(), 2);
    assert_eq!(h.joined(t1).error, None);
    // In CompletingRebalance/Stable the size is the member count.
    let mut req = join_req("g", "", "late");
    req.require_known_member_id = false;
    let t = h.join(req);
    assert_eq!(h.joined(t).error, Some(GroupError::GroupMaxSizeReached));
}

#[test]
fn rebalance_timeout_removes_a_member_that_does_not_rejoin() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 2);
    let leader = ids[0].clone();
    let start = h.now.mono_ms;
    // The leader rejoins: a rebalance the follower only learns of by heartbeat, and ignores.
    let t = h.join(join_req("g", &leader, "c"));
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    loop {
        h.advance(3_000);
        if h.join_answer(t).is_some() {
            break;
        }
        assert_eq!(
            h.heartbeat("g", generation, &ids[1]),
            Err(GroupError::RebalanceInProgress)
        );
    }
    assert_eq!(h.now.mono_ms - start, REBALANCE_MS as u64);
    let answer = h.joined(t);
    assert_eq!(answer.generation_id, generation + 1);
    assert_eq!(answer.members.len(), 1);
    assert_eq!(h.member_ids("g"), vec![leader]);
    assert_eq!(
        h.heartbeat("g", generation, &ids[1]),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn session_expiry_removes_a_silent_member_and_rebalances() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 2);
    // Only the first member heartbeats.
    for _ in 0..2 {
        h.advance(4_000);
        assert_eq!(h.heartbeat("g", generation, &ids[0]), Ok(()));
    }
    assert_eq!(h.member_ids("g").len(), 2);
    h.advance(4_000);
    assert_eq!(h.member_ids("g"), vec![ids[0].clone()]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(
        h.heartbeat("g", generation, &ids[0]),
        Err(GroupError::RebalanceInProgress)
    );
    // The survivor rejoins: everyone left has joined, so the phase ends at once.
    let t = h.join(join_req("g", &ids[0], "c"));
    assert_eq!(h.joined(t).generation_id, generation + 1);
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
}

#[test]
fn a_member_waiting_in_the_join_phase_does_not_expire() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 2);
    // The follower rejoins with new metadata and waits; the leader heartbeats but is slow to
    // rejoin (it is busy processing records).
    let t = h.join(changed_join("g", &ids[1]));
    for _ in 0..(REBALANCE_MS / 3_000 - 1) {
        h.advance(3_000);
        assert_eq!(
            h.heartbeat("g", generation, &ids[0]),
            Err(GroupError::RebalanceInProgress)
        );
    }
    assert!(h.join_answer(t).is_none());
    assert_eq!(
        h.member_ids("g").len(),
        2,
        "the waiting follower did not expire"
    );
    // At the rebalance timeout the leader, which never rejoined, is dropped.
    h.advance(3_000);
    let answer = h.joined(t);
    assert_eq!(answer.error, None);
    assert_eq!(answer.generation_id, generation + 1);
    assert_eq!(
        answer.leader, ids[1],
        "leadership passed to the member that rejoined"
    );
    assert_eq!(h.member_ids("g"), vec![ids[1].clone()]);
}

#[test]
fn everyone_leaving_empties_the_group_and_stores_it() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 2);
    let leaving: Vec<LeavingMember> = ids
        .iter()
        .map(|id| LeavingMember {
            member_id: id.clone(),
            group_instance_id: None,
        })
        .chain(std::iter::once(LeavingMember {
            member_id: "ghost".into(),
            group_instance_id: None,
        }))
        .collect();
    let stored = h.stored.len();
    let results = h.c.leave(h.now, "g", &leaving).expect("request ok");
    h.collect();
    assert_eq!(
        results,
        vec![Ok(()), Ok(()), Err(GroupError::UnknownMemberId)]
    );
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    let d = h.c.describe_group("g").expect("group kept");
    assert_eq!(d.generation_id, generation + 1);
    assert!(d.members.is_empty());
    let value = GroupValue::decode(&h.stored[stored].1).expect("decodes");
    assert!(value.members.is_empty());
    assert_eq!(value.protocol, None);
    assert_eq!(value.current_state_timestamp_ms, h.now.wall_ms);

    assert_eq!(
        h.c.leave(h.now, "", &leaving),
        Err(GroupError::InvalidGroupId)
    );
    assert_eq!(
        h.c.leave(h.now, "nope", &leaving[..1]),
        Ok(vec![Err(GroupError::UnknownMemberId)])
    );
}

#[test]
fn leaving_answers_the_leavers_waiting_join() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", 2);
    let t0 = h.join(join_req("g", &ids[0], "c"));
    // The follower's join is pending too... then it leaves instead.
    let t1 = h.join(join_req("g", &ids[1], "c"));
    // Both joined: the phase completed already. Start another and leave mid-way.
    assert!(h.join_answer(t0).is_some() && h.join_answer(t1).is_some());
    let generation = h.joined(t0).generation_id;
    let leader = h.joined(t0).leader.clone();
    let s = h.sync(sync_req("g", generation, &leader, Vec::new()));
    assert_eq!(h.synced(s).error, None);
    let other = if leader == ids[0] { &ids[1] } else { &ids[0] };
    let s = h.sync(sync_req("g", generation, other, Vec::new()));
    assert_eq!(h.synced(s).error, None);

    let t = h.join(changed_join("g", other));
    assert!(h.join_answer(t).is_none());
    let leave = [LeavingMember {
        member_id: other.clone(),
        group_instance_id: None,
    }];
    assert_eq!(h.c.leave(h.now, "g", &leave), Ok(vec![Ok(())]));
    h.collect();
    assert_eq!(h.joined(t).error, Some(GroupError::UnknownMemberId));
}

#[test]
fn a_pending_member_id_holds_the_join_phase_until_used_or_expired() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 1);
    // A second consumer gets its id but does not come back.
    let _pending = h.member_id("g", "slow");
    let t = h.join(join_req("g", &ids[0], "c"));
    assert!(h.join_answer(t).is_none(), "waits for the pending member");
    h.advance(SESSION_MS as u64);
    let answer = h.joined(t);
    assert_eq!(answer.generation_id, generation + 1);
    assert_eq!(answer.members.len(), 1);
}

#[test]
fn a_pending_member_that_rejoins_is_added() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 1);
    let newcomer = h.member_id("g", "new");
    let t_new = h.join(join_req("g", &newcomer, "new"));
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let t_old = h.join(join_req("g", &ids[0], "c"));
    let answer = h.joined(t_old);
    assert_eq!(answer.generation_id, generation + 1);
    assert_eq!(answer.members.len(), 2);
    assert_eq!(h.joined(t_new).leader, ids[0]);
}

#[test]
fn a_second_join_answers_the_first() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", 2);
    let first = h.join(changed_join("g", &ids[1]));
    assert!(h.join_answer(first).is_none());
    let second = h.join(changed_join("g", &ids[1]));
    assert_eq!(h.joined(first).error, Some(GroupError::RebalanceInProgress));
    assert!(h.join_answer(second).is_none());
    let t = h.join(join_req("g", &ids[0], "c"));
    assert_eq!(h.joined(second).error, None);
    assert_eq!(h.joined(t).members.len(), 2);
}

#[test]
fn a_follower_rejoining_a_stable_group_unchanged_gets_the_current_generation() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", 2);
    let t = h.join(join_req("g", &ids[1], "c"));
    let answer = h.joined(t);
    assert_eq!(answer.error, None);
    assert_eq!(answer.generation_id, generation);
    assert_eq!(answer.leader, ids[0]);
    assert!(answer.members.is_empty());
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // With new metadata, it triggers a rebalance.
    let mut req = join_req("g", &ids[1], "c");
    req.protocols = vec![("range".into(), consumer_metadata(&["t", "u"]))];
    let t = h.join(req);
    assert!(h.join_answer(t).is_none());
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
}

#[test]
fn heartbeat_error_codes() {
    let mut h = Harness::new();
    assert_eq!(h.heartbeat("", 0, "m"), Err(GroupError::InvalidGroupId));
    assert_eq!(
        h.heartbeat("nope", 0, "m"),
        Err(GroupError::UnknownMemberId)
    );
    let (ids, generation) = h.stable_group("g", 2);
    assert_eq!(
        h.heartbeat("g", generation, "ghost"),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat("g", generation + 1, &ids[0]),
        Err(GroupError::IllegalGeneration)
    );
    // CompletingRebalance: the right generation is fine.
    let t0 = h.join(join_req("g", &ids[0], "c"));
    assert_eq!(
        h.heartbeat("g", generation, &ids[1]),
        Err(GroupError::RebalanceInProgress)
    );
    let t1 = h.join(join_req("g", &ids[1], "c"));
    let next = h.joined(t0).generation_id;
    assert!(h.join_answer(t1).is_some());
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
    assert_eq!(h.heartbeat("g", next, &ids[1]), Ok(()));
    assert_eq!(
        h.heartbeat("g", generation, &ids[1]),
        Err(GroupError::IllegalGeneration)
    );
}

#[test]
fn sync_error_codes() {
    let mut h = Harness::new();
    let s = h.sync(sync_req("", 1, "m", Vec::new()));
    assert_eq!(h.synced(s).error, Some(GroupError::InvalidGroupId));
    let s = h.sync(sync_req("nope", 1, "m", Vec::new()));
    assert_eq!(h.synced(s).error, Some(GroupError::UnknownMemberId));
    let (ids, generation) = h.stable_group("g", 2);
    let s = h.sync(sync_req("g", generation, "ghost", Vec::new()));
    assert_eq!(h.synced(s).error, Some(GroupError::UnknownMemberId));
    let s = h.sync(sync_req("g", generation - 1, &ids[0], Vec::new()));
    assert_eq!(h.synced(s).error, Some(GroupError::IllegalGeneration));
    let mut req = sync_req("g", generation, &ids[0], Vec::new());
    req.protocol_name = Some("roundrobin".into());
    let s = h.sync(req);
    assert_eq!(
        h.synced(s).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut req = sync_req("g", generation, &ids[0], Vec::new());
    req.protocol_type = Some("connect".into());
    let s = h.sync(req);
    assert_eq!(
        h.synced(s).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    // Unset protocol fields (SyncGroup before v5) are not checked.
    let mut req = sync_req("g", generation, &ids[1], Vec::new());
    req.protocol_type = None;
    req.protocol_name = None;
    let s = h.sync(req);
    assert_eq!(h.synced(s).error, None);

    let _ = h.join(join_req("g", &ids[0], "c"));
    let s = h.sync(sync_req("g", generation, &ids[1], Vec::new()));
    assert_eq!(h.synced(s).error, Some(GroupError::RebalanceInProgress));
}

#[test]
fn followers_wait_for_the_leaders_sync_and_missing_members_get_nothing() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..3).map(|i| h.member_id("g", &format!("c{i}"))).collect();
    let tokens: Vec<Token> = ids
        .iter()
        .map(|id| h.join(join_req("g", id, "c")))
        .collect();
    h.settle_joins(&tokens);
    let generation = h.joined(tokens[0]).generation_id;
    let s2 = h.sync(sync_req("g", generation, &ids[2], Vec::new()));
    let s1 = h.sync(sync_req("g", generation, &ids[1], Vec::new()));
    assert!(h.sync_answer(s1).is_none() && h.sync_answer(s2).is_none());
    // The leader forgets member 2 and names a stranger.
    let s0 = h.sync(sync_req(
        "g",
        generation,
        &ids[0],
        vec![
            (ids[0].clone(), Bytes::from_static(b"zero")),
            (ids[1].clone(), Bytes::from_static(b"one")),
            ("stranger".into(), Bytes::from_static(b"x")),
        ],
    ));
    assert_eq!(h.synced(s0).assignment, Bytes::from_static(b"zero"));
    assert_eq!(h.synced(s1).assignment, Bytes::from_static(b"one"));
    assert_eq!(h.synced(s2).error, None);
    assert!(h.synced(s2).assignment.is_empty());
}

#[test]
fn a_leader_that_never_syncs_is_removed_and_the_group_rebalances() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..2).map(|i| h.member_id("g", &format!("c{i}"))).collect();
    let tokens: Vec<Token> = ids
        .iter()
        .map(|id| h.join(join_req("g", id, "c")))
        .collect();
    h.settle_joins(&tokens);
    let generation = h.joined(tokens[0]).generation_id;
    let follower_sync = h.sync(sync_req("g", generation, &ids[1], Vec::new()));
    // The leader heartbeats (its heartbeat thread is alive) but never sends its assignment.
    for _ in 0..(REBALANCE_MS / 3_000) {
        assert!(h.sync_answer(follower_sync).is_none());
        assert_eq!(h.heartbeat("g", generation, &ids[0]), Ok(()));
        h.advance(3_000);
    }
    assert_eq!(
        h.synced(follower_sync).error,
        Some(GroupError::RebalanceInProgress)
    );
    assert_eq!(h.member_ids("g"), vec![ids[1].clone()]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let t = h.join(join_req("g", &ids[1], "c"));
    assert_eq!(h.joined(t).generation_id, generation + 1);
}

#[test]
fn a_follower_that_never_syncs_is_removed_even_after_stable() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..2).map(|i| h.member_id("g", &format!("c{i}"))).collect();
    let tokens: Vec<Token> = ids
        .iter()
        .map(|id| h.join(join_req("g", id, "c")))
        .collect();
    h.settle_joins(&tokens);
    let generation = h.joined(tokens[0]).generation_id;
    let s = h.sync(sync_req("g", generation, &ids[0], Vec::new()));
    assert_eq!(h.synced(s).error, None);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // The follower heartbeats but never syncs.
    for _ in 0..(REBALANCE_MS / 3_000) {
        assert_eq!(h.heartbeat("g", generation, &ids[0]), Ok(()));
        assert_eq!(h.heartbeat("g", generation, &ids[1]), Ok(()));
        h.advance(3_000);
    }
    assert_eq!(h.member_ids("g"), vec![ids[0].clone()]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
}

#[test]
fn protocol_selection_in_a_join() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..3).map(|i| h.member_id("g", &format!("c{i}"))).collect();
    let prefs: [&[&str]; 3] = [
        &["roundrobin", "range"],
        &["range", "roundrobin"],
        &["range"],
    ];
    let mut tokens = Vec::new();
    for (id, prefs) in ids.iter().zip(prefs) {
        let mut req = join_req("g", id, "c");
        req.protocols = prefs
            .iter()
            .map(|p| ((*p).to_owned(), Bytes::from(format!("{p}-{id}"))))
            .collect();
        tokens.push(h.join(req));
    }
    h.settle_joins(&tokens);
    // "range" is the only protocol all support.
    let answer = h.joined(tokens[0]);
    assert_eq!(answer.protocol_name.as_deref(), Some("range"));
    for m in &answer.members {
        assert_eq!(m.metadata, Bytes::from(format!("range-{}", m.member_id)));
    }
}

#[test]
fn list_describe_and_delete_groups() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("stable", 2);
    let _ = h.member_id("pending", "c");
    h.c.apply_offset_commit(
        "simple",
        "t",
        0,
        crate::OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: h.now.wall_ms,
        },
        None,
    );
    let all = h.c.list_groups(&[]);
    let names: Vec<_> = all.iter().map(|g| (g.group_id.as_str(), g.state)).collect();
    assert_eq!(
        names,
        vec![
            ("pending", GroupState::Empty),
            ("simple", GroupState::Empty),
            ("stable", GroupState::Stable)
        ]
    );
    assert_eq!(all[1].protocol_type, "");
    assert_eq!(all[2].protocol_type, "consumer");
    let stable = h.c.list_groups(&[GroupState::Stable, GroupState::Dead]);
    assert_eq!(stable.len(), 1);

    let d = h.c.describe_group("stable").expect("known");
    assert_eq!(d.protocol_name.as_deref(), Some("range"));
    assert_eq!(d.generation_id, generation);
    assert_eq!(d.leader.as_deref(), Some(ids[0].as_str()));
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.members[1].assignment, Bytes::from_static(b"p1"));
    assert_eq!(d.members[1].metadata, consumer_metadata(&["t"]));
    assert_eq!(d.members[1].client_host, "/127.0.0.1");
    assert!(h.c.describe_group("unknown").is_none());

    // While rebalancing, no metadata or assignment is shown.
    let _ = h.join(join_req("stable", &ids[0], "c"));
    let d = h.c.describe_group("stable").expect("known");
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert_eq!(d.protocol_name, None);
    assert!(d
        .members
        .iter()
        .all(|m| m.assignment.is_empty() && m.metadata.is_empty()));

    assert_eq!(
        h.c.validate_delete_group("stable"),
        Err(GroupError::NonEmptyGroup)
    );
    assert_eq!(
        h.c.validate_delete_group("nope"),
        Err(GroupError::GroupIdNotFound)
    );
    assert_eq!(h.c.validate_delete_group("simple"), Ok(()));
    h.c.apply_delete_group("simple");
    assert!(h.c.describe_group("simple").is_none());
    assert!(h.c.committed_offsets("simple").is_empty());
}

#[test]
fn next_deadline_tracks_every_timer() {
    let mut h = Harness::new();
    assert_eq!(h.c.next_deadline(), None);
    let id = h.member_id("g", "c");
    // The pending member id expires after its session timeout.
    assert_eq!(h.c.next_deadline(), Some(h.now.mono_ms + SESSION_MS as u64));
    let _ = h.join(join_req("g", &id, "c"));
    assert_eq!(h.c.next_deadline(), Some(h.now.mono_ms + DELAY_MS));
    h.advance(DELAY_MS);
    // Completing: the sync deadline (rebalance timeout) and the session (sooner).
    assert_eq!(h.c.next_deadline(), Some(h.now.mono_ms + SESSION_MS as u64));
    // Unused, the pending id of another client disappears with its group.
    let _ = h.member_id("other", "c");
    h.advance(SESSION_MS as u64);
    assert!(h.c.describe_group("other").is_none());
    // The silent member expired too; its group is Empty at generation 2 and has no timers.
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    assert_eq!(h.c.next_deadline(), None);
}

#[test]
fn unloading_forgets_the_selected_groups_and_fails_their_waiters() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("moving", 2);
    let _ = h.stable_group("staying", 1);
    // A rejoin waits (the group rebalances); unloading answers it NOT_COORDINATOR.
    let waiting = h.join(join_req("moving", &ids[0], "c"));
    assert!(h.join_answer(waiting).is_none());
    assert_eq!(h.c.unload(|g| g == "moving"), 1);
    h.collect();
    assert_eq!(
        h.joined(waiting).error,
        Some(GroupError::NotCoordinator),
        "the waiting join is told to find the new coordinator"
    );
    assert!(h.c.describe_group("moving").is_none());
    assert_eq!(h.state("staying"), Some(GroupState::Stable));
    // Nothing was written for the unloaded group, and its timers went with it.
    let before = h.stored.len();
    h.advance(60_000);
    assert!(h.c.describe_group("moving").is_none());
    assert!(h.stored[before..]
        .iter()
        .all(|(k, _)| !k.ends_with(b"moving")));
}
