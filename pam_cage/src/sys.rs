//! The few Linux-PAM declarations a session module needs, written by hand
//! from `<security/_pam_types.h>` and `<security/pam_modules.h>` (libpam0g
//! 1.5), and the one place that turns PAM items into Rust strings.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::{PhantomData, PhantomPinned};

/// `pam_handle_t`: opaque, only ever behind a pointer PAM gave us.
#[repr(C)]
pub struct PamHandle {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// Return values (`_pam_types.h`).
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SESSION_ERR: c_int = 14;
pub const PAM_IGNORE: c_int = 25;

// Item types for `pam_get_item`.
pub const PAM_SERVICE: c_int = 1;
pub const PAM_USER: c_int = 2;

#[link(name = "pam")]
extern "C" {
    /// `int pam_get_item(const pam_handle_t *pamh, int item_type,
    /// const void **item);`
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
}

/// A string item (`PAM_SERVICE`, `PAM_USER`): `Ok(None)` when unset, the
/// PAM error code when `pam_get_item` fails. Non-UTF-8 bytes are replaced.
///
/// # Safety
/// `pamh` is the handle PAM passed to the current `pam_sm_*` call and
/// `item_type` is an item whose value is a NUL-terminated string.
pub unsafe fn string_item(
    pamh: *const PamHandle,
    item_type: c_int,
) -> Result<Option<String>, c_int> {
    let mut item: *const c_void = std::ptr::null();
    // SAFETY: pamh is the live handle of this call (contract) and item is a
    // valid out pointer; PAM keeps ownership of the returned value.
    let rc = unsafe { pam_get_item(pamh, item_type, &mut item) };
    if rc != PAM_SUCCESS {
        return Err(rc);
    }
    if item.is_null() {
        return Ok(None);
    }
    // SAFETY: for string item types PAM stores a NUL-terminated string that
    // stays valid until the item is changed; it is copied at once.
    let s = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
    Ok(Some(s.to_string_lossy().into_owned()))
}

/// The module arguments `argv[0..argc]` as strings (lossy); NULL entries
/// are skipped.
///
/// # Safety
/// `argv` is NULL (only when `argc` is 0) or points to `argc` pointers,
/// each NULL or a NUL-terminated string, as PAM passes them.
pub unsafe fn args(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: argv points to argc pointers (contract).
    let ptrs = unsafe { std::slice::from_raw_parts(argv, n) };
    ptrs.iter()
        .filter(|p| !p.is_null())
        // SAFETY: each non-NULL entry is a NUL-terminated string (contract).
        .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        .collect()
}
