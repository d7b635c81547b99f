import CWeftShim
import Glibc

/// A plain pthread for the packet loops (no Foundation, no executor: these threads block in
/// `poll` and must never starve the daemon's cooperative pool).
struct NativeThread: @unchecked Sendable {
    let handle: pthread_t

    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes show in `top -H`).
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> NativeThread? {
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            b.name.withCString { _ = weft_set_thread_name($0) }
            b.body()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            return nil
        }
        return NativeThread(handle: tid)
    }

    var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }

    func join() { _ = pthread_join(handle, nil) }
    func detach() { _ = pthread_detach(handle) }
}
