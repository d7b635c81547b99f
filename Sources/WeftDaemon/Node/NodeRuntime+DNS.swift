import WeftAPI
import WeftCore

/// `weft dns`: the name records, and names for services outside containers.
extension NodeRuntime {
    func dnsRecords() -> [API.DNSRecord] {
        let names = memberNames()
        var live: Set<NodeID> = [node.me]
        for m in node.membership.members where m.state == .alive || m.state == .suspect { live.insert(m.id) }
        let domain = node.settings.dnsDomain.description
        return node.dns.entries.filter { !$0.value.deleted }.map { k, r in
            API.DNSRecord(name: r.name, fqdn: "\(r.name).\(domain)", address: IPAM.format(r.address), owner: k.owner.hex,
                          ownerName: names[k.owner] ?? "?", handle: k.handle, served: live.contains(k.owner))
        }.sorted { ($0.name, $0.address) < ($1.name, $1.address) }
    }

    func dnsChange(add: Bool, name: String, address: String?) -> Result<[API.DNSRecord], API.ErrorBody> {
        var a: UInt32?
        if let address {
            guard let parsed = API.parseIPv4(address) else {
                return .failure(API.ErrorBody(code: .badRequest, message: "'\(address)' is not an IPv4 address"))
            }
            a = parsed
        }
        let (result, effects) = add ? node.addName(name, address: a!, now: now) : node.removeName(name, address: a, now: now)
        perform(effects)
        switch result {
        case .success: return .success(dnsRecords())
        case .failure(let e): return .failure(API.ErrorBody(code: e.isNotFound ? .notFound : e.isStorage ? .internal : .badRequest, message: e.description))
        }
    }
}
