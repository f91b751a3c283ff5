//! A core WebAssembly module (what clang makes for C) into a component of
//! the counting world, with the WASI preview 1 reactor adapter.

use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

use super::embedded;

/// The component made of `core`. A module without the WIT metadata of the
/// world (`wit-bindgen c` links it in as `*_component_type.o`) gets the
/// embedded contract's.
pub fn componentize(core: &[u8]) -> anyhow::Result<Vec<u8>> {
    if core.len() < 8 || &core[..4] != b"\0asm" || core[4..8] != [1, 0, 0, 0] {
        anyhow::bail!("not a core WebAssembly module (it must start with \\0asm version 1)");
    }
    let (has_metadata, imports_wasi) = inspect(core)?;
    let mut module = core.to_vec();
    if !has_metadata {
        let wit = std::str::from_utf8(embedded::file("wit/plugin.wit").expect("the WIT file is embedded"))?;
        let mut resolve = Resolve::default();
        let package = resolve.push_str("plugin.wit", wit)?;
        let world = resolve.select_world(&[package], Some("counting-plugin"))?;
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    }
    let mut encoder = ComponentEncoder::default().validate(true).module(&module)?;
    if imports_wasi {
        encoder = encoder.adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?;
    }
    encoder.encode()
}

/// Whether the module carries WIT metadata (a `component-type*` custom
/// section, what `wit-bindgen` emits) and whether it imports WASI preview 1.
fn inspect(core: &[u8]) -> anyhow::Result<(bool, bool)> {
    let (mut metadata, mut wasi) = (false, false);
    for payload in wasmparser::Parser::new(0).parse_all(core) {
        match payload? {
            wasmparser::Payload::CustomSection(section) if section.name().starts_with("component-type") => metadata = true,
            wasmparser::Payload::ImportSection(imports) => {
                for import in imports {
                    wasi |= import?.module == wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;
                }
            }
            _ => {}
        }
    }
    Ok((metadata, wasi))
}
