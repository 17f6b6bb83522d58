//! The wire messages of the DAG-native cores: none. Their votes are DAG edges (a
//! certificate's parents), so they send nothing of their own; any frame on their
//! consensus channel fails to decode (an enum without variants has no encoding) and the
//! driver drops and counts it.

use serde::{Deserialize, Serialize};

/// A message of Bullshark or Tusk: there are none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {}
