#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/: binary seeds from the real encoders
# (fuzz/tools/make_corpus/main.swift, compiled with WeftCore's sources) and the text seeds
# below. Run after a wire format change and commit the result.
set -eu
cd "$(dirname "$0")/../.."
export PATH=/opt/swift/usr/bin:$PATH
mkdir -p .build/fuzz
swiftc -suppress-warnings -module-name MakeCorpus fuzz/tools/make_corpus/main.swift \
    $(find Sources/WeftCore -name '*.swift' | sort) -o .build/fuzz/make_corpus
.build/fuzz/make_corpus fuzz/corpus

c=fuzz/corpus/control_request; mkdir -p $c
printf '{"v":1,"op":"status"}' > $c/status
printf '{"v":1,"op":"join","addresses":["127.0.0.1:7946","[::1]:7946","host.example:1"]}' > $c/join
printf '{"v":1,"op":"alloc","handle":"ctr-1/eth0"}' > $c/alloc
printf '{"v":1,"op":"reclaim","node":"a1b2"}' > $c/reclaim
printf '{"v":99,"op":"future"}' > $c/newer
printf '{"v":1,"op":"release","handle":"\\u0000\\ud800"}' > $c/odd-strings

c=fuzz/corpus/cni_config; mkdir -p $c
printf '\0{"cniVersion":"1.0.0","name":"weft","type":"weft-cni","mtu":1420,"dataDir":"/var/lib/weft"}' > $c/conf
printf '\0{"cniVersion":"1.1.0","name":"weft","type":"weft-cni","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],"prevResult":{"ips":[{"address":"10.42.0.5/16"}]}}' > $c/gc
printf '\0{"cniVersion":"0.4.0","name":"x","type":"weft-cni","mtu":-1,"n":[1e999,-0.0,"\\ud83d\\ude00"]}' > $c/odd-json
printf '\001CNI_COMMAND=ADD\nCNI_CONTAINERID=abc\nCNI_NETNS=/var/run/netns/x\nCNI_IFNAME=eth0\nCNI_PATH=/opt/cni/bin' > $c/env-add
printf '\001CNI_COMMAND=DEL\nCNI_CONTAINERID=abc\nCNI_IFNAME=this-name-is-too-long-for-linux' > $c/env-del

c=fuzz/corpus/endpoint_text; mkdir -p $c
for t in '127.0.0.1:7946' '[::1]:7946' '[fd00::1:2]:1' '10.42.0.0/16' '0.0.0.0:0' 'host:65536' '[::ffff:1.2.3.4]:80' '10.42.0.0/33' '1.2.3.4/0'; do
    printf '%s' "$t" > "$c/$(printf '%s' "$t" | tr -c 'a-zA-Z0-9' '_')"
done
# tunnel_instance scripts: op bytes (0 send, 1 deliver, 2 replay/flip, 3 tick, 4 raw, 5 lose).
c=fuzz/corpus/tunnel_instance; mkdir -p $c
printf '\x00\x05\xaa\xbb\xcc\x01\x01\x01\x01\x00\x04\x11\x22\x01\x02\x00\x82\x00\x03\xff\x80\x06\x01\x02\x03\x04\x01\x01' > $c/handshake-data-replay
printf '\x00\x03\x01\x01\x05\x01\x03\x05\x03\xff\x03\xff\x00\x02\x01\x01\x01\x01' > $c/lost-response-retry
printf '\x00\x03\x01\x41\x01\x01\x01\x01\x01' > $c/under-load-cookie
printf '\x04\x94\x01\x04\x00\x00' > $c/raw-initiation-prefix
echo "text seeds written"
