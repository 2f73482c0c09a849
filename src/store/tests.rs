//! Tests of `store`.

use super::*;

#[tokio::test]
async fn values_round_trip_and_bad_versions_are_refused() {
    let bytes = encode(&("alice".to_string(), 7u64));
    assert_eq!(bytes[0], VALUE_VERSION);
    let back: (String, u64) = decode(&bytes).unwrap();
    assert_eq!(back, ("alice".to_string(), 7));
    let mut wrong = bytes.clone();
    wrong[0] = 9;
    assert!(decode::<(String, u64)>(&wrong).is_err());
    let mut longer = bytes;
    longer.push(0);
    assert!(decode::<(String, u64)>(&longer).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_units_share_batches_and_each_gets_its_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let file = Arc::new(File::create(dir.path().join("data")).unwrap());
    // Many at once, so batches hold several units; every third one aborts after
    // writing, and must leave nothing behind nor stop the others.
    let commits = (0..60u64).map(|i| {
        let (store, file) = (store.clone(), file.clone());
        tokio::spawn(async move {
            store
                .commit(Some(file), move |tx| {
                    tx.tree(Tree::Meta)
                        .insert(format!("unit {i}").as_bytes(), &i.to_be_bytes())?;
                    if i % 3 == 0 {
                        return abort(Error::bad(format!("unit {i} refused")));
                    }
                    Ok(i * 10)
                })
                .await
        })
    });
    let outcomes = futures_util::future::join_all(commits).await;
    for (i, outcome) in (0..60u64).zip(outcomes) {
        match outcome.unwrap() {
            Ok(value) => assert_eq!(value, i * 10),
            Err(e) => assert_eq!((i % 3, e.to_string()), (0, format!("unit {i} refused"))),
        }
        let written = store.tree(Tree::Meta).get(format!("unit {i}")).unwrap();
        assert_eq!(written.is_some(), i % 3 != 0, "unit {i}");
    }
    store.durable().await.unwrap();
}

#[tokio::test]
async fn a_second_open_of_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    match Store::open(dir.path()) {
        Err(OpenFailure::Busy(msg)) => {
            assert!(msg.contains("in use by another lifeboat process"), "{msg}")
        }
        _ => panic!("second open must be refused"),
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match Store::open(dir.path()) {
        Err(OpenFailure::Other(e)) => assert!(e.to_string().contains("newer lifeboat"), "{e}"),
        _ => panic!("a newer schema must be refused"),
    }
}

#[tokio::test]
async fn transactions_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let result: Result<()> = store.transaction(|tx| {
        tx.put(Tree::Meta, b"a", &1u64)?;
        abort(Error::bad("no"))
    });
    assert!(result.is_err());
    assert!(store.tree(Tree::Meta).get(b"a").unwrap().is_none());
    store.transaction(|tx| tx.put(Tree::Meta, b"a", &1u64)).unwrap();
    store.durable().await.unwrap();
    assert_eq!(
        decode::<u64>(&store.tree(Tree::Meta).get(b"a").unwrap().unwrap()).unwrap(),
        1
    );
}
