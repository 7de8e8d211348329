//! The coordinator's limits, with Kafka's defaults.

/// Limits and timeouts of the group coordinator. The defaults are Apache Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub group_min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub group_max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more members, extended by
    /// this much (up to the rebalance timeout) while new members keep arriving
    /// (`group.initial.rebalance.delay.ms`).
    pub group_initial_rebalance_delay_ms: i32,
    /// Most members a group may have (`group.max.size`).
    pub group_max_size: i32,
    /// How long offsets are kept once they may expire (`offsets.retention.minutes` in ms):
    /// after the group became empty, or after the commit for groups without a protocol type.
    pub offsets_retention_ms: i64,
    /// How long a member that joined for the first time may wait for its JoinGroup answer
    /// before it is dropped (Kafka's fixed `NewMemberJoinTimeoutMs`, 5 minutes): a client that
    /// gave up and retried must not stay in the group as a ghost.
    pub new_member_join_timeout_ms: i32,
    /// Mixed into generated member ids. The broker sets it from a clock or a random source
    /// when it starts, so that ids do not repeat across restarts.
    pub member_id_seed: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            new_member_join_timeout_ms: 300_000,
            member_id_seed: 0,
        }
    }
}
