//! Message text as text nodes and links, never as HTML.

use crate::text::{Piece, pieces};
use leptos::{either::Either, prelude::*};

#[component]
pub fn MessageText(#[prop(into)] text: String) -> impl IntoView {
    let views = pieces(&text)
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(text) => Either::Left(text.to_owned()),
            Piece::Link(url) => Either::Right(view! {
                <a
                    href=url.to_owned()
                    rel="noopener noreferrer nofollow"
                    target="_blank"
                    class="text-orange-700 underline decoration-orange-700/40 underline-offset-2 hover:decoration-orange-700 dark:text-orange-300 dark:decoration-orange-300/40"
                >
                    {url.to_owned()}
                </a>
            }),
        })
        .collect_view();
    view! {
        <p dir="auto" class="max-h-[40rem] overflow-hidden whitespace-pre-wrap [overflow-wrap:anywhere] [unicode-bidi:plaintext]">
            {views}
        </p>
    }
}
