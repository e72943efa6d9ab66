//! Unit tests of the event feed's keys, lines and fragments.

use super::*;

fn account_event() -> Event {
    Event::AccountUpdated {
        account: crate::messages::account_view(Uuid::from_u128(7)),
    }
}

#[test]
fn an_event_survives_the_feed() {
    let event = account_event();
    let line = Line {
        user: Uuid::from_u128(1),
        id: EventId {
            epoch: epoch_text(0xab),
            seq: 42,
        },
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        fragment: encode(&event).unwrap(),
    };
    let decoded = Line::decode(&line.encode()).unwrap();
    assert_eq!(decoded, line);
    let text = decoded.message();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["id"], "000000ab.42");
    let back: Event = serde_json::from_str(&text).unwrap();
    assert_eq!(back, event);
}

#[test]
fn a_line_without_trace_round_trips() {
    let line = Line {
        user: Uuid::nil(),
        id: EventId {
            epoch: "e1".into(),
            seq: 1,
        },
        traceparent: None,
        fragment: r#""type":"x", "a b":1}"#.into(),
    };
    assert!(line.encode().contains(" e1.1 - "));
    assert_eq!(Line::decode(&line.encode()), Some(line));
    assert_eq!(Line::decode("not-a-uuid e1.1 - {}"), None);
    assert_eq!(Line::decode("only three parts"), None);
}

#[test]
fn keys() {
    let user = Uuid::from_u128(1);
    assert_eq!(epoch_key("p"), "p:epoch");
    assert_eq!(seq_key("p"), "p:seq");
    assert_eq!(channel("p"), "p:feed");
    assert_eq!(legacy_channel("p"), "p:events");
    assert_eq!(
        user_stream_key("p", user),
        format!("p:ev:00000000-0000-0000-0000-000000000001")
    );
    assert_eq!(relayed_key("p", 2 * RELAYED_HOUR_MICROS + 1), "p:relayed:2");
    assert_eq!(relayed_key("p", -1), "p:relayed:-1");
}

#[test]
fn stream_entries() {
    assert_eq!(stream_entry_seq(&stream_entry_id(9)), Some(9));
    let fields: Vec<String> = [FIELD_FRAGMENT, "frag", FIELD_TRACEPARENT, NONE]
        .map(String::from)
        .to_vec();
    assert_eq!(stream_entry_fragment(&fields), Some("frag"));
    let reversed: Vec<String> = [FIELD_TRACEPARENT, NONE, FIELD_FRAGMENT, "frag"]
        .map(String::from)
        .to_vec();
    assert_eq!(stream_entry_fragment(&reversed), Some("frag"));
}

#[test]
fn event_ids() {
    assert_eq!(
        EventId::parse("a1b2.42"),
        Some(EventId {
            epoch: "a1b2".into(),
            seq: 42
        })
    );
    assert_eq!(EventId::parse("42"), None);
    assert_eq!(EventId::parse("a.b"), None);
    assert_eq!(EventId::parse(".1"), None);
    assert_eq!(EventId::parse("x y.1"), None);
    assert_eq!(EventId::parse("a1b2.42").unwrap().to_string(), "a1b2.42");
}

#[test]
fn relay_args_follow_the_script() {
    let mut a = RelayArgs::new("p", 10, "e".into(), 5);
    // The fixed head, then the lines of the published message.
    let head = a.args().count();
    assert!(RELAY_SCRIPT.contains(&format!("ARGV[{head}]: the event lines")));
    // The script's per-event loops start after them.
    assert!(RELAY_SCRIPT.contains(&format!("for i = {}, #ARGV, 4 do", head + 1)));
    a.push(Uuid::nil(), None, None, "frag");
    assert_eq!(a.events(), 1);
    let all: Vec<&str> = a.args().collect();
    assert_eq!(&all[head + 1..], [NONE, NONE, "frag"]);
}

#[test]
fn a_batch_message_numbers_each_users_lines() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let payload = format!("e1 {a}:7 {b}:1\n{a} {tp} \"n\":1}}\n{b} - \"n\":2}}\n{a} - \"x y\":3}}");
    let line = |user, seq, traceparent: Option<&str>, fragment: &str| Line {
        user,
        id: EventId {
            epoch: "e1".into(),
            seq,
        },
        traceparent: traceparent.map(Into::into),
        fragment: fragment.into(),
    };
    let batch = batch_lines(&payload);
    assert!(batch.complete);
    assert_eq!(
        batch.lines,
        [
            line(a, 7, Some(tp), r#""n":1}"#),
            line(b, 1, None, r#""n":2}"#),
            line(a, 8, None, r#""x y":3}"#),
        ]
    );
}

#[test]
fn a_broken_batch_message_stops_where_numbering_would_be_guesswork() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    // A line of a user the head does not name, or without its parts: the
    // lines before it stand, none after it.
    for bad in [format!("{b} - x"), format!("{a} -"), "garbage".into()] {
        let payload = format!("e1 {a}:1\n{a} - \"n\":1}}\n{bad}\n{a} - \"n\":2}}");
        let batch = batch_lines(&payload);
        assert!(!batch.complete, "{bad}");
        assert_eq!(batch.lines.len(), 1, "{bad}");
        assert_eq!(batch.lines[0].id.seq, 1);
    }
    // A head that is not one: nothing.
    for payload in [
        format!("e.1 {a}:1\n{a} - x"),
        format!("e1 {a}=1\n{a} - x"),
        String::new(),
    ] {
        assert_eq!(batch_lines(&payload), Batch::default(), "{payload}");
    }
}

#[test]
fn relay_arguments_cannot_break_a_line() {
    let mut args = RelayArgs::new("p", 10, "e1".into(), 0);
    args.push(Uuid::nil(), Some("00-ab cd\n-01"), None, "\"a\":\n1}");
    args.push(Uuid::nil(), Some("00-0af7-b7ad-01"), None, "\"a\":1}");
    let all: Vec<&str> = args.args().collect();
    let nil = Uuid::nil();
    assert_eq!(
        all[12],
        format!("{nil} - \"a\": 1}}\n{nil} 00-0af7-b7ad-01 \"a\":1}}")
    );
    assert_eq!(
        &all[13..17],
        [nil.to_string().as_str(), NONE, NONE, "\"a\": 1}"]
    );
    assert_eq!(all[18], "00-0af7-b7ad-01");
    assert_eq!(args.events(), 2);
}
