//! A hundred consumers start at once.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

const MEMBERS: usize = 100;
const PARTITIONS: u32 = 300;

pub(crate) fn encode_partitions(partitions: &[u32]) -> Bytes {
    let mut buf = BytesMut::with_capacity(partitions.len() * 4);
    for p in partitions {
        buf.put_u32(*p);
    }
    buf.freeze()
}

pub(crate) fn decode_partitions(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The leader's assignor: partitions round-robin over the members it was given, in order.
pub(crate) fn round_robin(members: &[String], partitions: u32) -> Vec<(String, Bytes)> {
    let mut shares: Vec<Vec<u32>> = vec![Vec::new(); members.len()];
    for p in 0..partitions {
        shares[p as usize % members.len()].push(p);
    }
    members
        .iter()
        .zip(shares)
        .map(|(m, share)| (m.clone(), encode_partitions(&share)))
        .collect()
}

#[test]
fn a_hundred_members_reach_one_stable_generation() {
    let mut h = Harness::new();
    let ids: Vec<String> = (0..MEMBERS)
        .map(|i| h.member_id("big", &format!("consumer-{i}")))
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), MEMBERS, "member ids are unique");

    let tokens: Vec<Token> = ids
        .iter()
        .map(|id| h.join(join_req("big", id, "consumer")))
        .collect();
    h.settle_joins(&tokens);
    let answers: Vec<JoinResponse> = tokens.iter().map(|t| h.joined(*t).clone()).collect();
    let leader = answers[0].leader.clone();
    for (a, id) in answers.iter().zip(&ids) {
        assert_eq!(a.error, None);
        assert_eq!(a.generation_id, 1, "one generation");
        assert_eq!(&a.member_id, id);
        assert_eq!(a.leader, leader);
    }
    let leader_answer = answers
        .iter()
        .find(|a| a.member_id == leader)
        .expect("the leader is a member");
    assert_eq!(leader_answer.members.len(), MEMBERS);
    let listed: Vec<String> = leader_answer
        .members
        .iter()
        .map(|m| m.member_id.clone())
        .collect();

    // Followers sync first and wait; the leader's sync answers them all.
    let mut syncs = Vec::new();
    for id in ids.iter().filter(|id| **id != leader) {
        syncs.push((id.clone(), h.sync(sync_req("big", 1, id, Vec::new()))));
    }
    assert!(syncs.iter().all(|(_, t)| h.sync_answer(*t).is_none()));
    let assignment = round_robin(&listed, PARTITIONS);
    syncs.push((
        leader.clone(),
        h.sync(sync_req("big", 1, &leader, assignment)),
    ));

    let mut seen = BTreeSet::new();
    for (_, token) in &syncs {
        let answer = h.synced(*token);
        assert_eq!(answer.error, None);
        let share = decode_partitions(&answer.assignment);
        assert_eq!(share.len(), PARTITIONS as usize / MEMBERS);
        for p in share {
            assert!(seen.insert(p), "partition {p} assigned twice");
        }
    }
    assert_eq!(seen, (0..PARTITIONS).collect::<BTreeSet<u32>>());
    let d = h.c.describe_group("big").expect("known");
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.generation_id, 1);
    assert_eq!(d.members.len(), MEMBERS);
}
