//! Self-tests of the harness pieces that need no Envoy: the fake upstream and the client.
//! Run: `cargo test -p geolb-e2e --test harness`.

use std::time::Duration;

use geolb_e2e::*;

#[test]
fn upstream_answers_with_region_and_echoes_the_routing_header_over_keep_alive() {
    let u = Upstream::start("cn-hangzhou");
    let req = Request::reviews()
        .header("X-Geolb-Region", "cn-shanghai")
        .header("x-geolb-region", "cn-beijing")
        .header("x-other", "1");
    let results = send_on_one_connection(u.addr(), &req, 3);
    for r in &results {
        let r = r.as_ref().expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.served_region(), Some("cn-hangzhou"));
        assert_eq!(r.seen_routing_header(), Some("cn-shanghai,cn-beijing"));
        assert_eq!(r.body_str(), "region=cn-hangzhou\n");
    }
    assert_eq!(u.served(), 3);
    // Headers reach the server verbatim (names lower-cased by the server), in order.
    let seen = u.last_request_headers();
    let names: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["host", "x-geolb-region", "x-geolb-region", "x-other"]
    );
    let plain = send_one(u.addr(), &Request::reviews()).expect("response");
    assert_eq!(
        plain.seen_routing_header(),
        Some(""),
        "absent header echoes as empty"
    );
}

#[test]
fn upstream_bodies_look_like_bookinfo_reviews() {
    let u = Upstream::start("cn-shanghai");
    u.set_body(Body::ReviewsV1);
    let v1 = send_one(u.addr(), &Request::reviews())
        .expect("v1")
        .body_str();
    assert_eq!(v1.matches("full stars").count(), 0, "{v1}");
    assert!(
        v1.contains("Reviewer1") && v1.contains("region=cn-shanghai"),
        "{v1}"
    );
    u.set_body(Body::ReviewsV2);
    let v2 = send_one(u.addr(), &Request::reviews())
        .expect("v2")
        .body_str();
    assert_eq!(
        v2.lines().filter(|l| l.contains("full stars")).count(),
        2,
        "{v2}"
    );
}

#[test]
fn upstream_faults_fail_stop_and_restart_on_the_same_port() {
    let mut u = Upstream::start("cn-beijing");
    let addr = u.addr();
    u.set_failing(503);
    let r = send_one(addr, &Request::reviews()).expect("response");
    assert_eq!((r.status, r.served_region()), (503, Some("cn-beijing")));
    u.set_healthy();
    // An open keep-alive connection is closed by stop(), and new connects are refused.
    let mut conn = Connection::open(addr).expect("connect");
    assert_eq!(conn.send(&Request::reviews()).expect("first").status, 200);
    u.stop();
    assert!(
        conn.send(&Request::reviews()).is_err(),
        "connection survived stop()"
    );
    let err = Connection::open(addr)
        .err()
        .expect("connect after stop must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    u.restart();
    assert_eq!(u.addr(), addr);
    let r = send_one(addr, &Request::reviews()).expect("after restart");
    assert_eq!(r.status, 200);
    u.set_delay(Duration::from_millis(50));
    let t = std::time::Instant::now();
    send_one(addr, &Request::reviews()).expect("delayed");
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn summary_counts_regions_statuses_and_errors() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    b.set_failing(503);
    let mut results = send_on_new_connections(a.addr(), &Request::reviews(), 3);
    results.extend(send_parallel(b.addr(), &Request::reviews(), 2, 2));
    results.push(Err(std::io::Error::other("boom")));
    let s = Summary::of(&results);
    assert_eq!((s.total, s.ok, s.errors, s.failures()), (8, 3, 1, 5), "{s}");
    assert_eq!(s.served_by("a"), 3);
    assert_eq!(s.non_2xx.get(&503), Some(&4));
}
