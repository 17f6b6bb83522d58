//! The client-facing transaction endpoint: any client may submit; oversized and
//! truncated transactions are refused and counted; honest clients keep flowing; past
//! the intake's byte budget transactions are refused and their client told which.

mod common;

use bytes::Bytes;
use network::clients::{
    intake, ClientListener, ClientListenerConfig, IntakeSender, TransactionClient,
    REFUSED_TOO_LARGE,
};
use network::Environment;
use primitives::crypto::KeyPair;
use std::time::Duration;

/// A client endpoint at `address` with 1 KiB transactions and 64 KiB windows.
async fn listen(key: &KeyPair, address: &str, intake: IntakeSender) -> ClientListener {
    ClientListener::start(
        ClientListenerConfig {
            key: key.ed25519.clone(),
            bind: address.parse().unwrap(),
            environment: Environment::Udp,
            max_transaction_size: 1024,
            max_inflight_bytes: 64 * 1024,
            rng_seed: None,
        },
        intake,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_submit_and_abusers_are_refused() {
    let key = KeyPair::from_seed(&[1; 32]);
    let port = common::free_ports(1)[0];
    let address = format!("127.0.0.1:{port}");
    let (tx, mut rx) = intake(1 << 20);
    let listener = listen(&key, &address, tx).await;

    // A client that checks the wrong node key cannot connect.
    let other = KeyPair::from_seed(&[2; 32]);
    assert!(
        TransactionClient::connect(Environment::Udp, &address, other.public_key(), 1024, None)
            .await
            .is_err()
    );

    // An abusive client: one oversized transaction (its own limit is looser).
    let mut abuser =
        TransactionClient::connect(Environment::Udp, &address, key.public_key(), 1 << 20, None)
            .await
            .unwrap();
    abuser.submit(Bytes::from(vec![0u8; 5000])).await.unwrap();
    let _ = abuser.flush().await;
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = abuser
                .submit(Bytes::from(vec![0u8; 10]))
                .await
                .and(abuser.flush().await)
            {
                return e.to_string();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        refused.contains(&REFUSED_TOO_LARGE.to_string()),
        "{refused}"
    );

    // An honest client keeps going, in order.
    let mut honest =
        TransactionClient::connect(Environment::Udp, &address, key.public_key(), 1024, None)
            .await
            .unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..1000u32 {
            honest
                .submit(Bytes::from(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
        }
        honest.finish().await.unwrap();
    });
    for i in 0..1000u32 {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Bytes::from(i.to_be_bytes().to_vec()));
    }
    sender.await.unwrap();
    let m = listener.metrics().snapshot();
    assert_eq!(m.refused_too_large, 1);
    assert_eq!(m.transactions, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_intake_budget_transactions_are_refused_and_the_client_told_which() {
    let key = KeyPair::from_seed(&[3; 32]);
    let port = common::free_ports(1)[0];
    let address = format!("127.0.0.1:{port}");
    // Room for ten 100-byte transactions, and nobody sealing them yet.
    let (tx, mut rx) = intake(1000);
    let listener = listen(&key, &address, tx).await;
    let mut client =
        TransactionClient::connect(Environment::Udp, &address, key.public_key(), 1024, None)
            .await
            .unwrap();
    let make = |i: u32| {
        let mut t = vec![0u8; 100];
        t[..4].copy_from_slice(&i.to_be_bytes());
        Bytes::from(t)
    };
    for i in 0..1000u32 {
        assert_eq!(client.submit(make(i)).await.unwrap(), i as u64);
    }
    // The client is never disconnected: it finishes and hears about every transaction.
    let (admission, refused) = client.finish().await.unwrap();
    assert_eq!(admission.sent, 1000);
    assert_eq!(admission.decided, 1000);
    assert_eq!(admission.refused, 990);
    let refused: Vec<u64> = refused.into_iter().flat_map(|(a, b)| a..b).collect();
    assert_eq!(refused.len(), 990);
    // Exactly the transactions not refused reached the intake, in order.
    let accepted: Vec<Bytes> = (0..1000u32)
        .filter(|i| !refused.contains(&(*i as u64)))
        .map(make)
        .collect();
    assert_eq!(accepted.len(), 10);
    for want in accepted {
        assert_eq!(rx.recv().await.unwrap(), want);
    }
    assert_eq!(rx.queued_bytes(), 0);
    let m = listener.metrics().snapshot();
    assert_eq!((m.transactions, m.refused_overload), (10, 990));

    // Once the intake drains, a new stream is admitted again.
    let mut again =
        TransactionClient::connect(Environment::Udp, &address, key.public_key(), 1024, None)
            .await
            .unwrap();
    again.submit(make(7)).await.unwrap();
    let (admission, _) = again.finish().await.unwrap();
    assert_eq!((admission.decided, admission.refused), (1, 0));
    assert_eq!(rx.recv().await.unwrap(), make(7));
}
