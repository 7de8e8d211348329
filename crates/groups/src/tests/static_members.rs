//! KIP-345 static membership.

use bytes::Bytes;

use super::*;
use crate::LeavingMember;

fn static_join(group: &str, member: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.into()),
        require_known_member_id: false,
        ..join_req(group, member, instance)
    }
}

fn static_sync(group: &str, generation: i32, member: &str, instance: &str) -> SyncRequest {
    SyncRequest {
        group_instance_id: Some(instance.into()),
        ..sync_req(group, generation, member, Vec::new())
    }
}

fn heartbeat(
    h: &mut Harness,
    generation: i32,
    member: &str,
    instance: Option<&str>,
) -> Result<(), GroupError> {
    h.c.heartbeat(
        h.now,
        &HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: instance.map(str::to_owned),
        },
    )
}

/// Two static members, instance ids "i0" (leader) and "i1", Stable with assignments "p0", "p1".
fn stable_static_group(h: &mut Harness) -> (Vec<String>, i32) {
    let t0 = h.join(static_join("g", "", "i0"));
    let t1 = h.join(static_join("g", "", "i1"));
    h.settle_joins(&[t0, t1]);
    let ids = vec![
        h.joined(t0).member_id.clone(),
        h.joined(t1).member_id.clone(),
    ];
    assert!(ids[0].starts_with("i0-") && ids[1].starts_with("i1-"));
    let generation = h.joined(t0).generation_id;
    assert_eq!(h.joined(t0).leader, ids[0]);
    let mut leader_sync = static_sync("g", generation, &ids[0], "i0");
    leader_sync.assignments = vec![
        (ids[0].clone(), Bytes::from_static(b"p0")),
        (ids[1].clone(), Bytes::from_static(b"p1")),
    ];
    let s0 = h.sync(leader_sync);
    let s1 = h.sync(static_sync("g", generation, &ids[1], "i1"));
    assert_eq!(h.synced(s0).assignment, Bytes::from_static(b"p0"));
    assert_eq!(h.synced(s1).assignment, Bytes::from_static(b"p1"));
    (ids, generation)
}

#[test]
fn a_restarted_static_follower_takes_its_place_without_rebalance() {
    let mut h = Harness::new();
    let (ids, generation) = stable_static_group(&mut h);
    let stored = h.stored.len();

    let t = h.join(static_join("g", "", "i1"));
    let answer = h.joined(t).clone();
    assert_eq!(answer.error, None);
    assert_ne!(answer.member_id, ids[1]);
    assert!(answer.member_id.starts_with("i1-"));
    assert_eq!(answer.generation_id, generation);
    assert_eq!(answer.leader, ids[0]);
    assert!(answer.members.is_empty() && !answer.skip_assignment);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // The new member id was persisted.
    assert_eq!(h.stored.len(), stored + 1);
    let value = crate::GroupValue::decode(&h.stored[stored].1).expect("decodes");
    assert!(value
        .members
        .iter()
        .any(|m| m.member_id == answer.member_id));

    let new_id = answer.member_id;
    let s = h.sync(static_sync("g", generation, &new_id, "i1"));
    assert_eq!(h.synced(s).assignment, Bytes::from_static(b"p1"));
    assert_eq!(heartbeat(&mut h, generation, &new_id, Some("i1")), Ok(()));

    // The old incarnation is fenced everywhere.
    assert_eq!(
        heartbeat(&mut h, generation, &ids[1], Some("i1")),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(
        heartbeat(&mut h, generation, &ids[1], None),
        Err(GroupError::UnknownMemberId)
    );
    let s = h.sync(static_sync("g", generation, &ids[1], "i1"));
    assert_eq!(h.synced(s).error, Some(GroupError::FencedInstanceId));
    let t = h.join(static_join("g", &ids[1], "i1"));
    assert_eq!(h.joined(t).error, Some(GroupError::FencedInstanceId));
    assert_eq!(
        h.c.validate_offset_commit(h.now, "g", generation, &ids[1], Some("i1")),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(
        h.c.validate_offset_commit(h.now, "g", generation, &new_id, Some("i1")),
        Ok(())
    );
    // A known member id claiming another member's instance id is fenced too.
    let t = h.join(static_join("g", &ids[0], "i1"));
    assert_eq!(h.joined(t).error, Some(GroupError::FencedInstanceId));
    assert_eq!(h.state("g"), Some(GroupState::Stable));
}

#[test]
fn a_restarted_static_leader_skips_assignment_or_is_told_the_old_leader() {
    let mut h = Harness::new();
    let (ids, generation) = stable_static_group(&mut h);

    // JoinGroup v9+: told it leads, with the members, but not to assign.
    let t = h.join(static_join("g", "", "i0"));
    let answer = h.joined(t).clone();
    assert_eq!(answer.generation_id, generation);
    assert_eq!(answer.leader, answer.member_id);
    assert!(answer.skip_assignment);
    assert_eq!(answer.members.len(), 2);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    let s = h.sync(static_sync("g", generation, &answer.member_id, "i0"));
    assert_eq!(h.synced(s).assignment, Bytes::from_static(b"p0"));

    // Older clients: the answer names the previous leader id, so the new incarnation acts
    // as a follower and fetches its stored assignment.
    let previous = answer.member_id;
    let mut req = static_join("g", "", "i0");
    req.supports_skip_assignment = false;
    let t = h.join(req);
    let answer = h.joined(t).clone();
    assert_eq!(answer.leader, previous);
    assert_ne!(answer.member_id, previous);
    assert!(answer.members.is_empty() && !answer.skip_assignment);
    let d = h.c.describe_group("g").expect("known");
    assert_eq!(d.leader.as_deref(), Some(answer.member_id.as_str()));
    assert!(!ids.contains(&answer.member_id));
}

#[test]
fn a_static_rejoin_that_changes_the_protocol_rebalances() {
    let mut h = Harness::new();
    let mut req = static_join("g", "", "i0");
    req.protocols = vec![
        ("range".into(), Bytes::from_static(b"r")),
        ("roundrobin".into(), Bytes::from_static(b"rr")),
    ];
    let t = h.join(req.clone());
    h.settle_joins(&[t]);
    let id = h.joined(t).member_id.clone();
    let generation = h.joined(t).generation_id;
    let s = h.sync(static_sync("g", generation, &id, "i0"));
    assert_eq!(h.synced(s).error, None);
    assert_eq!(h.state("g"), Some(GroupState::Stable));

    req.protocols.reverse();
    let t = h.join(req);
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
    let answer = h.joined(t);
    assert_eq!(answer.generation_id, generation + 1);
    assert_eq!(answer.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn a_static_replacement_fences_the_old_incarnations_waiting_requests() {
    let mut h = Harness::new();
    let (ids, _) = stable_static_group(&mut h);
    // The follower's old incarnation waits in a join phase started by the leader.
    let _leader_join = h.join(static_join("g", &ids[0], "i0"));
    let old = h.join(static_join("g", &ids[1], "i1"));
    let generation = h.joined(old).generation_id;
    // Completing: the old incarnation waits for the assignment...
    let old_sync = h.sync(static_sync("g", generation, &ids[1], "i1"));
    assert!(h.sync_answer(old_sync).is_none());
    // ... when the new one arrives: the old sync is fenced, the group rebalances.
    let new = h.join(static_join("g", "", "i1"));
    assert_eq!(h.synced(old_sync).error, Some(GroupError::FencedInstanceId));
    assert!(h.join_answer(new).is_none());
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    // And a third incarnation fences the second's pending join.
    let newer = h.join(static_join("g", "", "i1"));
    assert_eq!(h.joined(new).error, Some(GroupError::FencedInstanceId));
    let t0 = h.join(static_join("g", &ids[0], "i0"));
    assert_eq!(h.joined(t0).generation_id, generation + 1);
    assert_eq!(h.joined(newer).error, None);
}

#[test]
fn static_members_that_do_not_rejoin_keep_their_place_until_their_session_expires() {
    let mut h = Harness::new();
    let (ids, generation) = stable_static_group(&mut h);
    // i1 is down (no heartbeats); the leader rejoins.
    let t = h.join(static_join("g", &ids[0], "i0"));
    // i1 expires after its session timeout, before the rebalance timeout: the phase ends.
    h.advance(SESSION_MS as u64);
    let answer = h.joined(t);
    assert_eq!(answer.generation_id, generation + 1);
    assert_eq!(answer.members.len(), 1);

    // With a session longer than the rebalance timeout, the absent static member is kept
    // and still assigned to.
    let mut h = Harness::new();
    let mut req = static_join("g", "", "i0");
    req.session_timeout_ms = 60_000;
    req.rebalance_timeout_ms = 20_000;
    let t0 = h.join(req.clone());
    req.group_instance_id = Some("i1".into());
    let t1 = h.join(req.clone());
    h.settle_joins(&[t0, t1]);
    let leader = h.joined(t0).member_id.clone();
    let generation = h.joined(t0).generation_id;
    let s = h.sync(static_sync("g", generation, &leader, "i0"));
    assert_eq!(h.synced(s).error, None);
    let follower = h.joined(t1).member_id.clone();
    let s = h.sync(static_sync("g", generation, &follower, "i1"));
    assert_eq!(h.synced(s).error, None);
    req.group_instance_id = Some("i0".into());
    req.member_id = leader.clone();
    let t = h.join(req);
    h.advance(20_000);
    let answer = h.joined(t);
    assert_eq!(answer.error, None);
    assert_eq!(
        answer.members.len(),
        2,
        "the absent static member is still listed"
    );
    assert_eq!(h.member_ids("g").len(), 2);
}

#[test]
fn a_static_restart_fits_a_full_group() {
    let mut h = Harness::with_config(CoordinatorConfig {
        group_max_size: 2,
        ..config()
    });
    let (_, generation) = stable_static_group(&mut h);
    let t = h.join(static_join("g", "", "i1"));
    assert_eq!(h.joined(t).error, None);
    assert_eq!(h.joined(t).generation_id, generation);
    // A third member does not fit.
    let t = h.join(static_join("g", "", "i2"));
    assert_eq!(h.joined(t).error, Some(GroupError::GroupMaxSizeReached));
}

#[test]
fn leave_by_instance_id() {
    let mut h = Harness::new();
    let (ids, _) = stable_static_group(&mut h);
    let wrong = [LeavingMember {
        member_id: "someone-else".into(),
        group_instance_id: Some("i1".into()),
    }];
    assert_eq!(
        h.c.leave(h.now, "g", &wrong),
        Ok(vec![Err(GroupError::FencedInstanceId)])
    );
    let unknown = [LeavingMember {
        member_id: String::new(),
        group_instance_id: Some("i9".into()),
    }];
    assert_eq!(
        h.c.leave(h.now, "g", &unknown),
        Ok(vec![Err(GroupError::UnknownMemberId)])
    );
    // An administrator removes i1 by instance id alone.
    let admin = [LeavingMember {
        member_id: String::new(),
        group_instance_id: Some("i1".into()),
    }];
    assert_eq!(h.c.leave(h.now, "g", &admin), Ok(vec![Ok(())]));
    h.collect();
    assert_eq!(h.member_ids("g"), vec![ids[0].clone()]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
}
