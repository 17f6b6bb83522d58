//! Tests of the Snowman replica: seeded in-memory clusters (`cluster`).

mod cluster;
