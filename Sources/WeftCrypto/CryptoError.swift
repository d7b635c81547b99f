/// Everything WeftCrypto can throw. Failures of remote input (a bad seal, a bad key text) are
/// reported with these cases; nothing in WeftCrypto traps on input from outside the process.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// `sodium_init()` failed; the process has no usable CSPRNG.
    case initializationFailed
    /// Raw key material of the wrong size.
    case invalidKeyLength(expected: Int, got: Int)
    /// A printed key (cluster key file, command line) that cannot be read; the text says why
    /// and never repeats the key itself.
    case invalidKeyText(String)
    /// AEAD open or signature check failed: wrong key or tampered bytes.
    case authenticationFailed
    /// Input too short or otherwise structurally invalid.
    case malformed(String)

    public var description: String {
        switch self {
        case .initializationFailed:
            return "libsodium failed to initialize: check that /dev/urandom (or getrandom) is available to this process"
        case .invalidKeyLength(let expected, let got):
            return "key has \(got) bytes, expected \(expected)"
        case .invalidKeyText(let why):
            return why
        case .authenticationFailed:
            return "authentication failed: wrong key or tampered data"
        case .malformed(let why):
            return "malformed input: \(why)"
        }
    }
}
