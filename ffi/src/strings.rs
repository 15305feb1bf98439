//! Strings across the boundary: UTF-8 and NUL-terminated both ways. Strings the
//! library returns are allocated by Rust and must come back to
//! [`wavecast_string_free`], never to C's `free`.

use std::ffi::{CStr, CString, c_char};

use crate::status::FfiError;

/// Reads the C string `ptr`, argument `name` of the call.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub(crate) unsafe fn read_str<'a>(
    ptr: *const c_char,
    name: &'static str,
) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::Null(name));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let string = unsafe { CStr::from_ptr(ptr) };
    string
        .to_str()
        .map_err(|source| FfiError::NotUtf8 { name, source })
}

/// `text` as a C string; a NUL inside it (which no message or JSON document the
/// library writes contains) becomes U+FFFD rather than cutting it short.
pub(crate) fn into_c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|error| {
        let text = String::from_utf8_lossy(&error.into_vec()).replace('\0', "\u{FFFD}");
        CString::new(text).unwrap_or_default()
    })
}

/// An out-parameter for a string the caller will own, checked before the call does
/// anything, and set to NULL until a string is written to it.
pub(crate) struct StringOut(*mut *mut c_char);

impl StringOut {
    /// Checks `out` (argument `name`) and sets `*out` to NULL.
    ///
    /// # Safety
    ///
    /// `out` is NULL or points to writable storage for one `char *`.
    pub(crate) unsafe fn new(out: *mut *mut c_char, name: &'static str) -> Result<Self, FfiError> {
        if out.is_null() {
            return Err(FfiError::Null(name));
        }
        // SAFETY: not NULL, and the caller promises it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        Ok(Self(out))
    }

    /// Hands `text` to the caller.
    pub(crate) fn set(self, text: String) {
        // SAFETY: `new` checked that the pointer is writable, and the caller of the
        // exported function keeps it so for the call's duration.
        unsafe { self.0.write(into_c_string(text).into_raw()) };
    }
}

/// Frees a string the library returned (a JSON document, an error message).
/// NULL is ignored.
///
/// # Safety
///
/// `string` is NULL or a string a `wavecast_` function returned, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_string_free(string: *mut c_char) {
    if !string.is_null() {
        // SAFETY: the caller promises it came from `CString::into_raw` in this
        // library and is freed once.
        drop(unsafe { CString::from_raw(string) });
    }
}
