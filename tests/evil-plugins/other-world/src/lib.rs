//! A well-formed component that implements another world than
//! `wc:plugin/counting-plugin`: loading it must fail with `WrongWorld`.

wit_bindgen::generate!({
    path: "wit",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn greet() -> String {
        "hello from another world".to_string()
    }
}

export!(Other);
