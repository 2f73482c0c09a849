//! The podmin's views of the held slots (`lifeboat backups list|stats`).

use super::*;

/// `backups list` as text: one line per slot, newest activity last in key order.
pub fn format_list(slots: &[SlotInfo]) -> String {
    if slots.is_empty() {
        return "no backup slots held\n".to_string();
    }
    let mut out = format!(
        "{:<40} {:<16} {:<11} {:>12} {:>10} {}\n",
        "EMAIL", "KEY", "STATE", "BYTES", "SEQUENCE", "LAST PUSH (UTC)"
    );
    for s in slots {
        let state = if s.restored {
            "restored"
        } else if s.rejected {
            "not-mine"
        } else if s.confirmed {
            "confirmed"
        } else {
            "unconfirmed"
        };
        let state = if !s.holds_backup && !s.restored && !s.rejected {
            format!("{state}*")
        } else {
            state.to_string()
        };
        out.push_str(&format!(
            "{:<40} {:<16} {:<11} {:>12} {:>10} {}\n",
            s.email,
            &s.fingerprint[..16],
            state,
            s.size,
            s.sequence,
            format_unix(s.last_push_unix)
        ));
    }
    out.push_str("(* deleted by its owner: a tombstone keeps the sequence)\n");
    out
}

/// `backups stats` as text.
pub fn format_stats(t: &Totals) -> String {
    format!(
        "confirmed slots:   {}\nconfirmed bytes:   {}\nunconfirmed slots: {}\nunconfirmed bytes: {}\ntombstones:        {}\nrestored:          {}\n",
        t.confirmed_slots, t.confirmed_bytes, t.unconfirmed_slots, t.unconfirmed_bytes, t.tombstones, t.restored
    )
}

pub(super) fn format_unix(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
