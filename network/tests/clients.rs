//! The client-facing transaction endpoint: any client may submit; oversized and
//! truncated transactions are refused and counted; honest clients keep flowing.

mod common;

use bytes::Bytes;
use network::clients::{
    ClientListener, ClientListenerConfig, TransactionClient, REFUSED_TOO_LARGE,
};
use network::Environment;
use primitives::crypto::KeyPair;
use std::time::Duration;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_submit_and_abusers_are_refused() {
    let key = KeyPair::from_seed(&[1; 32]);
    let port = common::free_ports(1)[0];
    let address = format!("127.0.0.1:{port}");
    let (tx, mut rx) = mpsc::channel(100);
    let listener = ClientListener::start(
        ClientListenerConfig {
            key: key.ed25519.clone(),
            bind: address.parse().unwrap(),
            environment: Environment::Udp,
            max_transaction_size: 1024,
            max_inflight_bytes: 64 * 1024,
            rng_seed: None,
        },
        tx,
    )
    .await
    .unwrap();

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
