use leptos::prelude::*;

/// What a visitor whose address is banned sees instead of the forms: until when, and why.
#[component]
pub fn BanNotice(sentence: String) -> impl IntoView {
    view! {
        <section
            role="alert"
            aria-labelledby="ban-title"
            class="rounded-2xl border border-red-200 bg-red-50 p-5 text-red-900 shadow-sm dark:border-red-900 dark:bg-red-950 dark:text-red-100"
        >
            <h2 id="ban-title" class="text-lg font-semibold">"You can't take part"</h2>
            <p class="mt-2 text-sm">{sentence}</p>
        </section>
    }
}
