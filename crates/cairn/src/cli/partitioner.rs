//! Which partition a produced record goes to.
//!
//! Keyed records use Kafka's default rule, `toPositive(murmur2(key)) % partitions` (Java's
//! `BuiltInPartitioner.partitionForKey`, librdkafka's `murmur2_random`), so a key lands
//! where Java and librdkafka producers would put it and their consumers of "all records
//! for key K" keep working. Null keys go round-robin, starting at partition 0.

use cairn_protocol::partitioner::partition_for_key;

/// Chooses partitions for a topic with a fixed partition count.
#[derive(Debug)]
pub(crate) struct Partitioner {
    partitions: i32,
    fixed: Option<i32>,
    next_round_robin: i32,
}

impl Partitioner {
    /// `fixed` sends everything to one partition; otherwise keys hash and null keys rotate.
    pub fn new(partitions: i32, fixed: Option<i32>) -> Partitioner {
        Partitioner {
            partitions: partitions.max(1),
            fixed,
            next_round_robin: 0,
        }
    }

    /// The partition for a record with `key`.
    pub fn partition(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.fixed {
            return p;
        }
        match key {
            Some(key) => partition_for_key(key, self.partitions),
            None => {
                let p = self.next_round_robin;
                self.next_round_robin = (p + 1) % self.partitions;
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_and_null_keys_rotate() {
        // toPositive(-973932308) = 1173551340; % 3 = 0, % 7 = 3.
        assert_eq!(partition_for_key(b"21", 3), 1_173_551_340 % 3);
        assert_eq!(partition_for_key(b"21", 7), 1_173_551_340 % 7);
        let mut p = Partitioner::new(3, None);
        assert_eq!(
            p.partition(Some(b"foobar")),
            partition_for_key(b"foobar", 3)
        );
        let rotation: Vec<i32> = (0..5).map(|_| p.partition(None)).collect();
        assert_eq!(rotation, [0, 1, 2, 0, 1]);
        let mut fixed = Partitioner::new(3, Some(2));
        assert_eq!(fixed.partition(Some(b"foobar")), 2);
        assert_eq!(fixed.partition(None), 2);
    }
}
