//! A generated picture for each nickname: a symmetric 5×5 pattern in one colour, drawn as a
//! single SVG path (a few hundred bytes, nothing fetched). The pattern depends on the room too,
//! so the same nickname does not look the same (and cannot be followed) from room to room. The
//! server and the browser draw it from the same code, so hydration finds what it expects.

use leptos::prelude::*;

/// FNV-1a over the room, a separator and the nickname: stable everywhere, no dependency.
fn fingerprint(room: &str, nickname: &str) -> u32 {
    let hash = room
        .bytes()
        .chain([0])
        .chain(nickname.bytes())
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    // A final mix, so nicknames that differ in their last letter differ in every cell.
    let hash = (hash ^ (hash >> 15)).wrapping_mul(0x2c1b_3c6d);
    hash ^ (hash >> 12)
}

/// One cell, `M{x} {y}h1v1h-1z`, written without the formatting machinery: a page hydrates
/// dozens of these at once.
fn cell(path: &mut String, x: u32, y: u32) {
    path.push('M');
    path.push(char::from(b'0' + x as u8));
    path.push(' ');
    path.push(char::from(b'0' + y as u8));
    path.push_str("h1v1h-1z");
}

/// The path of the cells that are on: columns 0–2 decided by 15 bits, 3–4 mirror 1–0.
fn cells(bits: u32) -> String {
    let mut path = String::with_capacity(200);
    for row in 0..5 {
        for column in 0..3 {
            if bits >> (row * 3 + column) & 1 == 1 {
                cell(&mut path, column, row);
                if column < 2 {
                    cell(&mut path, 4 - column, row);
                }
            }
        }
    }
    // A blank pattern says nothing: the middle column is drawn instead.
    if path.is_empty() {
        path.push_str("M2 0h1v5h-1z");
    }
    path
}

/// What the picture of `nickname` in `room` is made of: its hue (0–359) and its path.
pub fn identicon(room: &str, nickname: &str) -> (u32, String) {
    let hash = fingerprint(room, nickname);
    ((hash >> 16) % 360, cells(hash & 0x7fff))
}

#[component]
pub fn Avatar(
    #[prop(into)] room: String,
    #[prop(into)] nickname: String,
    /// Drawn but not shown (a message that continues its author's previous one).
    #[prop(optional)]
    hidden: bool,
) -> impl IntoView {
    let (hue, path) = identicon(&room, &nickname);
    // Presentation attributes, not `style`: the pages' CSP allows no inline styles.
    view! {
        <svg aria-hidden="true" viewBox="-1 -1 7 7" class="size-8 shrink-0 rounded-lg" class:hidden=hidden>
            <rect x="-1" y="-1" width="7" height="7" fill=format!("hsl({hue} 70% 90%)") />
            <path d=path fill=format!("hsl({hue} 65% 38%)") />
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_in_the_same_room_is_always_the_same_picture() {
        assert_eq!(identicon("lobby", "alice"), identicon("lobby", "alice"));
    }

    #[test]
    fn the_same_name_in_another_room_is_another_picture() {
        let rooms = ["lobby", "night-owls-k3x9q", "kitchen-a1b2c", "games-zz9x1"];
        let pictures: std::collections::HashSet<_> = rooms.iter().map(|room| identicon(room, "alice")).collect();
        assert_eq!(pictures.len(), rooms.len());
    }

    #[test]
    fn pictures_are_symmetric_and_small() {
        for nickname in ["alice", "bob", "李小龍", "🔥 fire", "a"] {
            let (hue, path) = identicon("lobby", nickname);
            assert!(hue < 360);
            assert!(path.len() < 300, "{nickname}: {} bytes", path.len());
            let cells: Vec<(u32, u32)> = path
                .split('M')
                .filter(|c| !c.is_empty() && c.ends_with("h1v1h-1z"))
                .map(|c| {
                    let (x, rest) = c.split_once(' ').expect("x y");
                    (x.parse().expect("x"), rest.trim_end_matches("h1v1h-1z").parse().expect("y"))
                })
                .collect();
            for (x, y) in &cells {
                assert!(cells.contains(&(4 - x, *y)), "{nickname}: ({x},{y}) has no mirror");
            }
        }
    }

    #[test]
    fn many_names_make_many_pictures() {
        let pictures: std::collections::HashSet<_> =
            (0..500).map(|n| identicon("lobby", &format!("member{n}"))).collect();
        assert!(pictures.len() > 490, "{} distinct of 500", pictures.len());
    }
}
