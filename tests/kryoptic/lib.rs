//! The kryoptic PKCS#11 module: the three entry points of the crates.io
//! package `kryoptic` (src/lib.rs, Apache-2.0, Copyright 2023 Simo Sorce),
//! over kryoptic-lib built without the `dynamic` feature.

use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::*;

/// PKCS#11 C_GetFunctionList.
#[no_mangle]
pub extern "C" fn C_GetFunctionList(fnlist: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(fnlist)
}

/// PKCS#11 3.0 C_GetInterface.
#[no_mangle]
pub extern "C" fn C_GetInterface(
    interface_name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(interface_name, version, interface, flags)
}

/// PKCS#11 3.0 C_GetInterfaceList.
#[no_mangle]
pub extern "C" fn C_GetInterfaceList(interfaces_list: CK_INTERFACE_PTR, count: CK_ULONG_PTR) -> CK_RV {
    fn_get_interface_list(interfaces_list, count)
}
