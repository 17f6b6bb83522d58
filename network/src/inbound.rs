//! The inbound side's queues: one lane per kind of traffic, each split per sending
//! member, bounded per member in bytes and messages, and read round robin over members.
//!
//! Why: with one first-in first-out queue for everything, a member that sends faster
//! than the node handles (a Byzantine flood, or an honest peer catching up) fills the
//! queue and every other member's messages wait behind it; and a consumer that is slow
//! on one kind of traffic (consensus) holds up the others (the mempool's batches). Here
//! a reader of a member's stream waits only for room in *that member's* queue of *that
//! lane* (QUIC flow control then slows that member alone), and the consumer of a lane
//! takes one message from each member with something queued in turn.
//!
//! Guarantees:
//! - per member and lane at most `max_bytes` bytes and `max_messages` messages are
//!   queued, except that a message is always admitted into an empty queue (so a frame
//!   larger than the byte bound still passes, alone);
//! - messages of one member in one lane come out in the order they were admitted;
//! - no member waits for another: a consumer never returns two messages of one member
//!   while another member of the lane has one queued, unless it took one of everyone
//!   else's in between (round robin by message);
//! - a lane's receiver gets `None` once the network has shut down and its queue is empty.

use crate::metrics::Metrics;
use crate::receiver::Incoming;
use primitives::NodeId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why a message could not be queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The sender's queue in that lane is at its bound (only from [`Lanes::try_push`]).
    Full,
    /// The receiving side is gone or the network shut down.
    Closed,
    /// No lane takes messages with this channel byte (or the message is empty).
    Unrouted,
    /// The sender is not a committee member (cannot happen for authenticated peers).
    UnknownSender,
}

/// The lanes of one node, and which channel byte goes to which lane.
pub(crate) struct Lanes {
    lanes: Vec<Arc<Lane>>,
    /// Lane index by a payload's first byte; `None`: dropped.
    route: [Option<u8>; 256],
    /// A lane that takes every message, empty ones included (a single-lane network).
    catch_all: bool,
}

impl Lanes {
    /// One lane per entry of `channels` (the first bytes it takes); with no entries,
    /// one lane that takes everything.
    pub(crate) fn new(
        members: impl Iterator<Item = NodeId> + Clone,
        channels: &[&[u8]],
        max_bytes: usize,
        max_messages: usize,
        metrics: Arc<Metrics>,
    ) -> Lanes {
        let count = channels.len().max(1);
        let mut route = [None; 256];
        for (lane, bytes) in channels.iter().enumerate() {
            for b in bytes.iter() {
                route[*b as usize] = u8::try_from(lane).ok();
            }
        }
        let lanes = (0..count)
            .map(|_| {
                Arc::new(Lane::new(
                    members.clone(),
                    max_bytes,
                    max_messages,
                    metrics.clone(),
                ))
            })
            .collect();
        Lanes {
            lanes,
            route,
            catch_all: channels.is_empty(),
        }
    }

    /// The receiving end of every lane, in the order of the channels given to [`Lanes::new`].
    pub(crate) fn lanes(&self) -> impl Iterator<Item = &Arc<Lane>> {
        self.lanes.iter()
    }

    fn lane(&self, payload: &[u8]) -> Option<&Arc<Lane>> {
        if self.catch_all {
            return self.lanes.first();
        }
        let index = self.route[*payload.first()? as usize]?;
        self.lanes.get(index as usize)
    }

    /// Queue `incoming`, waiting while its sender's queue in its lane is full.
    /// Cancel-safe: a cancelled call queued nothing.
    pub(crate) async fn push(&self, incoming: Incoming) -> Result<(), PushError> {
        self.push_or_return(incoming).await.map_err(|(e, _)| e)
    }

    /// [`Lanes::push`], giving the message back when it cannot be queued (so that the
    /// caller decides what becomes of its acknowledgement).
    pub(crate) async fn push_or_return(
        &self,
        incoming: Incoming,
    ) -> Result<(), (PushError, Incoming)> {
        match self.lane(&incoming.payload) {
            Some(lane) => lane.push(incoming).await,
            None => Err((PushError::Unrouted, incoming)),
        }
    }

    /// Queue `incoming` if its sender's queue in its lane has room.
    pub(crate) fn try_push(&self, incoming: Incoming) -> Result<(), PushError> {
        self.offer(incoming).map_err(|(e, _)| e)
    }

    /// [`Lanes::try_push`], giving the message back when it cannot be queued.
    pub(crate) fn offer(&self, incoming: Incoming) -> Result<(), (PushError, Incoming)> {
        match self.lane(&incoming.payload) {
            Some(lane) => lane.try_push(incoming),
            None => Err((PushError::Unrouted, incoming)),
        }
    }

    /// The network shut down: wake every waiting reader and consumer; consumers drain
    /// what is queued, then get `None`.
    pub(crate) fn close(&self) {
        for lane in &self.lanes {
            lane.close();
        }
    }
}

/// One lane: a queue per member.
pub(crate) struct Lane {
    /// Index of each member's queue.
    index: HashMap<NodeId, usize>,
    state: Mutex<LaneState>,
    /// The consumer waits here (one permit is kept if nobody waits).
    readable: Notify,
    /// Readers of member `i` wait on `writable[i]` for room.
    writable: Vec<Notify>,
    max_bytes: usize,
    max_messages: usize,
    metrics: Arc<Metrics>,
}

struct LaneState {
    queues: Vec<MemberQueue>,
    /// The member whose queue is looked at first by the next receive.
    cursor: usize,
    /// No more messages are admitted (shutdown, or the receiver was dropped).
    closed: bool,
    /// The receiver was dropped: queued messages are released.
    receiver_gone: bool,
}

#[derive(Default)]
struct MemberQueue {
    messages: VecDeque<Incoming>,
    bytes: usize,
}

impl Lane {
    fn new(
        members: impl Iterator<Item = NodeId>,
        max_bytes: usize,
        max_messages: usize,
        metrics: Arc<Metrics>,
    ) -> Lane {
        let index: HashMap<NodeId, usize> = members.enumerate().map(|(i, id)| (id, i)).collect();
        let n = index.len();
        Lane {
            index,
            state: Mutex::new(LaneState {
                queues: (0..n).map(|_| MemberQueue::default()).collect(),
                cursor: 0,
                closed: false,
                receiver_gone: false,
            }),
            readable: Notify::new(),
            writable: (0..n).map(|_| Notify::new()).collect(),
            max_bytes: max_bytes.max(1),
            max_messages: max_messages.max(1),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // A panic while holding this lock cannot leave the queues inconsistent (every
        // update is a push or a pop with its byte count), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn has_room(&self, queue: &MemberQueue) -> bool {
        queue.messages.is_empty()
            || (queue.bytes < self.max_bytes && queue.messages.len() < self.max_messages)
    }

    fn admit(&self, state: &mut LaneState, member: usize, incoming: Incoming) {
        let len = incoming.payload.len();
        if let Some(queue) = state.queues.get_mut(member) {
            queue.bytes += len;
            queue.messages.push_back(incoming);
            self.metrics.inbound_queued(len);
        }
        self.readable.notify_one();
    }

    async fn push(&self, incoming: Incoming) -> Result<(), (PushError, Incoming)> {
        let Some(member) = self.index.get(&incoming.from).copied() else {
            return Err((PushError::UnknownSender, incoming));
        };
        let Some(space) = self.writable.get(member) else {
            return Err((PushError::UnknownSender, incoming));
        };
        loop {
            // Registered before the lock is released, so a pop in between wakes it.
            let notified = space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return Err((PushError::Closed, incoming));
                }
                if state.queues.get(member).is_some_and(|q| self.has_room(q)) {
                    self.admit(&mut state, member, incoming);
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    fn try_push(&self, incoming: Incoming) -> Result<(), (PushError, Incoming)> {
        let Some(member) = self.index.get(&incoming.from).copied() else {
            return Err((PushError::UnknownSender, incoming));
        };
        let mut state = self.lock();
        if state.closed {
            return Err((PushError::Closed, incoming));
        }
        if state.queues.get(member).is_some_and(|q| self.has_room(q)) {
            self.admit(&mut state, member, incoming);
            Ok(())
        } else {
            Err((PushError::Full, incoming))
        }
    }

    /// The next message, round robin over members; `None` when closed and drained.
    pub(crate) fn try_pop(&self) -> Option<Incoming> {
        let popped = {
            let mut state = self.lock();
            let n = state.queues.len();
            let start = state.cursor;
            let mut found = None;
            for k in 0..n {
                let i = (start + k) % n;
                let Some(queue) = state.queues.get_mut(i) else {
                    continue;
                };
                if let Some(incoming) = queue.messages.pop_front() {
                    queue.bytes -= incoming.payload.len();
                    found = Some((i, incoming));
                    break;
                }
            }
            if let Some((i, _)) = &found {
                state.cursor = (i + 1) % n.max(1);
            }
            found
        };
        let (member, incoming) = popped?;
        self.metrics.inbound_dequeued(incoming.payload.len());
        if let Some(space) = self.writable.get(member) {
            space.notify_waiters();
        }
        Some(incoming)
    }

    /// Wait for the next message. Cancel-safe: nothing is taken unless it returns.
    pub(crate) async fn pop(&self) -> Option<Incoming> {
        loop {
            if let Some(incoming) = self.try_pop() {
                return Some(incoming);
            }
            if self.lock().closed {
                // Admissions stopped before the last look found the queues empty.
                return self.try_pop();
            }
            // A message admitted since the look above left a permit: no lost wake-up.
            self.readable.notified().await;
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.readable.notify_one();
        for space in &self.writable {
            space.notify_waiters();
        }
    }

    /// The consumer is gone: refuse new messages and release the queued ones (refused:
    /// their reliable senders resend them later).
    pub(crate) fn receiver_dropped(&self) {
        let released: Vec<Incoming> = {
            let mut state = self.lock();
            state.closed = true;
            state.receiver_gone = true;
            state
                .queues
                .iter_mut()
                .flat_map(|q| {
                    q.bytes = 0;
                    std::mem::take(&mut q.messages)
                })
                .collect()
        };
        let bytes: usize = released.iter().map(|m| m.payload.len()).sum();
        self.metrics.inbound_dequeued(bytes);
        // Not handled: a reliable sender is told so (and resends to a later instance).
        for message in released {
            message.reject();
        }
        for space in &self.writable {
            space.notify_waiters();
        }
    }

    /// Messages queued now (every member).
    pub(crate) fn len(&self) -> usize {
        self.lock().queues.iter().map(|q| q.messages.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    struct Counted {
        lanes: Lanes,
        metrics: Arc<Metrics>,
    }

    impl std::ops::Deref for Counted {
        type Target = Lanes;
        fn deref(&self) -> &Lanes {
            &self.lanes
        }
    }

    impl Counted {
        fn inbound_bytes(&self) -> u64 {
            self.metrics.snapshot().inbound_queued_bytes
        }
    }

    fn lanes(max_bytes: usize, max_messages: usize, channels: &[&[u8]]) -> Counted {
        let metrics = Arc::new(Metrics::default());
        Counted {
            lanes: Lanes::new(
                (0..3).map(NodeId),
                channels,
                max_bytes,
                max_messages,
                metrics.clone(),
            ),
            metrics,
        }
    }

    fn msg(from: u16, channel: u8, tag: u8, len: usize) -> Incoming {
        let mut v = vec![tag; len.max(2)];
        v[0] = channel;
        Incoming::new(NodeId(from), Bytes::from(v))
    }

    #[tokio::test]
    async fn members_are_served_in_turn_and_each_in_order() {
        let l = lanes(1 << 20, 1_000, &[]);
        for t in 0..5 {
            l.try_push(msg(0, 0, t, 4)).unwrap();
        }
        l.try_push(msg(1, 0, 100, 4)).unwrap();
        l.try_push(msg(2, 0, 200, 4)).unwrap();
        l.try_push(msg(1, 0, 101, 4)).unwrap();
        let lane = l.lanes().next().unwrap().clone();
        let order: Vec<(u16, u8)> = (0..8)
            .map(|_| {
                let m = lane.try_pop().unwrap();
                (m.from.0, m.payload[1])
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (0, 0),
                (1, 100),
                (2, 200),
                (0, 1),
                (1, 101),
                (0, 2),
                (0, 3),
                (0, 4)
            ]
        );
        assert!(lane.try_pop().is_none());
        assert_eq!(l.inbound_bytes(), 0);
    }

    #[tokio::test]
    async fn a_full_member_queue_refuses_only_that_member() {
        let l = lanes(10, 1_000, &[]);
        l.try_push(msg(0, 0, 1, 8)).unwrap();
        l.try_push(msg(0, 0, 2, 8)).unwrap(); // 8 < 10: room
        assert!(matches!(l.try_push(msg(0, 0, 3, 8)), Err(PushError::Full)));
        // Another member is not affected; an oversized message enters an empty queue.
        l.try_push(msg(1, 0, 4, 100)).unwrap();
        assert!(matches!(l.try_push(msg(1, 0, 5, 2)), Err(PushError::Full)));
        let lanes_count = l.lanes().count();
        assert_eq!(lanes_count, 1);
        assert_eq!(l.inbound_bytes(), 116);
    }

    #[tokio::test]
    async fn a_message_bound_applies_too() {
        let l = lanes(1 << 20, 2, &[]);
        l.try_push(msg(0, 0, 1, 2)).unwrap();
        l.try_push(msg(0, 0, 2, 2)).unwrap();
        assert!(matches!(l.try_push(msg(0, 0, 3, 2)), Err(PushError::Full)));
    }

    #[tokio::test]
    async fn channels_go_to_their_lanes_and_unknown_ones_are_refused() {
        let l = lanes(1 << 20, 100, &[&[0], &[1, 2]]);
        l.try_push(msg(0, 0, 7, 4)).unwrap();
        l.try_push(msg(0, 2, 8, 4)).unwrap();
        l.try_push(msg(0, 1, 9, 4)).unwrap();
        assert!(matches!(
            l.try_push(msg(0, 9, 9, 4)),
            Err(PushError::Unrouted)
        ));
        assert!(matches!(
            l.try_push(Incoming::new(NodeId(0), Bytes::new())),
            Err(PushError::Unrouted)
        ));
        assert!(matches!(
            l.try_push(msg(7, 0, 9, 4)),
            Err(PushError::UnknownSender)
        ));
        let all: Vec<Arc<Lane>> = l.lanes().cloned().collect();
        assert_eq!(all[0].try_pop().unwrap().payload[1], 7);
        assert_eq!(all[1].try_pop().unwrap().payload[1], 8);
        assert_eq!(all[1].try_pop().unwrap().payload[1], 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_reader_resumes_when_its_queue_drains_and_others_pass_meanwhile() {
        let l = Arc::new(lanes(4, 1_000, &[]));
        l.try_push(msg(0, 0, 1, 4)).unwrap();
        let waiting = {
            let l = l.clone();
            tokio::spawn(async move { l.push(msg(0, 0, 2, 4)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        // Member 1 is not held up by member 0's full queue.
        tokio::time::timeout(Duration::from_millis(10), l.push(msg(1, 0, 3, 4)))
            .await
            .unwrap()
            .unwrap();
        let lane = l.lanes().next().unwrap().clone();
        assert_eq!(lane.pop().await.unwrap().payload[1], 1);
        assert!(waiting.await.unwrap());
        assert_eq!(lane.pop().await.unwrap().payload[1], 3);
        assert_eq!(lane.pop().await.unwrap().payload[1], 2);
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_everyone_and_drains_first() {
        let l = Arc::new(lanes(4, 1_000, &[]));
        let lane = l.lanes().next().unwrap().clone();
        l.try_push(msg(0, 0, 1, 4)).unwrap();
        let blocked = {
            let l = l.clone();
            tokio::spawn(
                async move { matches!(l.push(msg(0, 0, 2, 4)).await, Err(PushError::Closed)) },
            )
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        l.close();
        assert!(blocked.await.unwrap());
        assert_eq!(lane.pop().await.unwrap().payload[1], 1);
        assert!(lane.pop().await.is_none());
        assert!(matches!(
            l.try_push(msg(1, 0, 3, 4)),
            Err(PushError::Closed)
        ));
        // A consumer waiting on an empty lane wakes up too.
        let l = Arc::new(lanes(4, 1_000, &[]));
        let lane = l.lanes().next().unwrap().clone();
        let consumer = tokio::spawn(async move { lane.pop().await.is_none() });
        tokio::time::sleep(Duration::from_millis(10)).await;
        l.close();
        assert!(consumer.await.unwrap());
    }

    #[tokio::test]
    async fn a_dropped_receiver_releases_what_was_queued() {
        let l = lanes(1 << 20, 100, &[]);
        l.try_push(msg(0, 0, 1, 10)).unwrap();
        let lane = l.lanes().next().unwrap().clone();
        lane.receiver_dropped();
        assert_eq!(lane.len(), 0);
        assert_eq!(l.inbound_bytes(), 0);
        assert!(matches!(
            l.try_push(msg(0, 0, 2, 4)),
            Err(PushError::Closed)
        ));
    }
}
