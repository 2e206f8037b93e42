//! Wire encode/decode (`rtm_proto::wire`) of the frames rtm sends most: a single change, a
//! batch of `BATCH_CHUNK` route adds, one notification and a frame of 4096 notifications.
//!
//! `cargo bench --bench codec`
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::sync::LazyLock;

use divan::{black_box, Bencher};
use rtm_proto::wire::{
    self, ChangeOp, ClientMsg, Event, Key, Op, Reply, Request, ServerMsg, Table,
};
use rtm_proto::{IfName, Prefix, Route};

fn route(i: u32) -> Route {
    let dev: IfName = "eth0".parse().expect("ifname");
    Route {
        dst: Prefix::new(Ipv4Addr::from((i << 8) | 0x0100_0000), 24).expect("prefix"),
        via: Some(Ipv4Addr::new(192, 168, 1, 1 + (i % 200) as u8)),
        dev: Some(dev),
        metric: i % 16,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

fn change(i: u32) -> Event {
    Event::Change {
        table: Table::Route,
        op: ChangeOp::Update,
        key: Key::Route(route(i).dst),
        seq: 1_000_000 + i as u64,
    }
}

static APPLY: LazyLock<ClientMsg> = LazyLock::new(|| ClientMsg::Request {
    id: 7,
    req: Request::Apply(Op::RouteReplace(route(1))),
});

static BATCH: LazyLock<ClientMsg> = LazyLock::new(|| ClientMsg::Request {
    id: 8,
    req: Request::Batch {
        ops: (0..wire::BATCH_CHUNK as u32)
            .map(|i| Op::RouteAdd(route(i)))
            .collect(),
        force: false,
    },
});

static EVENT: LazyLock<ServerMsg> = LazyLock::new(|| ServerMsg::Events(vec![change(1)]));

static EVENTS: LazyLock<ServerMsg> =
    LazyLock::new(|| ServerMsg::Events((0..4096).map(change).collect()));

static DONE: LazyLock<ServerMsg> = LazyLock::new(|| ServerMsg::Reply {
    id: 7,
    result: Ok(Reply::Done { seq: 123_456 }),
});

#[divan::bench(args = ["apply", "batch_4096"])]
fn encode_request(b: Bencher, which: &str) {
    let msg: &ClientMsg = if which == "apply" { &APPLY } else { &BATCH };
    b.bench(|| wire::encode(black_box(msg)).expect("encode"));
}

#[divan::bench(args = ["apply", "batch_4096"])]
fn decode_request(b: Bencher, which: &str) {
    let msg: &ClientMsg = if which == "apply" { &APPLY } else { &BATCH };
    let bytes = wire::encode(msg).expect("encode");
    b.bench(|| wire::decode::<ClientMsg>(black_box(&bytes)).expect("decode"));
}

#[divan::bench(args = ["done", "event_1", "events_4096"])]
fn encode_server(b: Bencher, which: &str) {
    let msg: &ServerMsg = match which {
        "done" => &DONE,
        "event_1" => &EVENT,
        _ => &EVENTS,
    };
    b.bench(|| wire::encode(black_box(msg)).expect("encode"));
}

#[divan::bench(args = ["done", "event_1", "events_4096"])]
fn decode_server(b: Bencher, which: &str) {
    let msg: &ServerMsg = match which {
        "done" => &DONE,
        "event_1" => &EVENT,
        _ => &EVENTS,
    };
    let bytes = wire::encode(msg).expect("encode");
    b.bench(|| wire::decode::<ServerMsg>(black_box(&bytes)).expect("decode"));
}

fn main() {
    divan::main();
}
