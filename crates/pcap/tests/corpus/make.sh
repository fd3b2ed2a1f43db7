#!/bin/bash
# How the capture files beside this script were made (kept for provenance; the test suite
# only reads the files). Real frames from a lab of two namespaces joined by a veth pair
# (198.18.99.0/24), captured by other programs' writers: tcpdump 4.99 / libpcap 1.10,
# dumpcap and tshark 4.0, then converted by editcap, mergecap, reordercap and text2pcap,
# and written big-endian by scapy and python-pcapng (pip install scapy python-pcapng;
# PY names that python). Run as root: ./make.sh OUTDIR
set -eu
OUT=$(realpath "${1:?usage: make.sh OUTDIR}"); HERE=$(dirname "$(realpath "$0")")
PY=${PY:-python3}
A=nsrt-corpus-a; B=nsrt-corpus-b
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $A; ip netns add $B
ip link add nsrtcorpa type veth peer name nsrtcorpb
ip link set nsrtcorpa netns $A; ip link set nsrtcorpb netns $B
for n in $A $B; do
  ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n $n link set lo up
done
ip -n $A addr add 198.18.99.1/24 dev nsrtcorpa; ip -n $B addr add 198.18.99.2/24 dev nsrtcorpb
ip -n $A link set nsrtcorpa up; ip -n $B link set nsrtcorpb up
sleep 1
traffic() {
  for s in 0 1400 56; do ip netns exec $A ping -q -c 2 -i 0.2 -s $s 198.18.99.2 >/dev/null; done
}
cap() { # capture while traffic() runs: cap COMMAND...
  ip netns exec $A "$@" & local pid=$!
  sleep 1.5; traffic; sleep 0.5; kill -INT $pid; wait $pid 2>/dev/null || true
}
cd "$OUT"
cap tcpdump -q -i nsrtcorpa -w tcpdump-us.pcap
cap tcpdump -q -i nsrtcorpa --time-stamp-precision nano -w tcpdump-ns.pcap
cap tcpdump -q -i nsrtcorpa -s 96 -w tcpdump-s96.pcap
cap tcpdump -q -i any -y LINUX_SLL -w tcpdump-any-sll.pcap
cap tcpdump -q -i any -y LINUX_SLL2 -w tcpdump-any-sll2.pcap
cap dumpcap -q -i nsrtcorpa -i lo -w dumpcap-2if.pcapng
cap dumpcap -q -i nsrtcorpa -s 128 --capture-comment "nsring corpus" -w dumpcap-comment.pcapng
cap tshark -q -i nsrtcorpa -F pcap -w tshark-us.pcap
cap tshark -q -i nsrtcorpa -w tshark.pcapng
chmod 644 ./*
editcap -F nsecpcap tcpdump-us.pcap editcap-nsec.pcap
editcap -F modpcap tcpdump-us.pcap editcap-modpcap.pcap
editcap -F rh6_1pcap tcpdump-us.pcap editcap-rh61.pcap
editcap -F suse6_3pcap tcpdump-us.pcap editcap-suse63.pcap
editcap -F nokiapcap tcpdump-us.pcap editcap-nokia.pcap
editcap -F pcapng tcpdump-ns.pcap editcap-ns.pcapng
editcap -s 60 -F pcapng dumpcap-2if.pcapng editcap-snap60.pcapng
editcap -T rawip -C 14 -F pcap tcpdump-us.pcap editcap-rawip.pcap
editcap -F pcap -r tcpdump-us.pcap editcap-first5.pcap 1-5
editcap -t 500000000 -F pcap tcpdump-us.pcap editcap-2042.pcap
editcap -t 2000000000 -F nsecpcap tcpdump-ns.pcap editcap-2090-ns.pcap
editcap -t -1000000000 -F pcapng tcpdump-us.pcap editcap-1995.pcapng
mergecap -w mergecap-mixed.pcapng tcpdump-us.pcap tcpdump-any-sll.pcap tcpdump-any-sll2.pcap
mergecap -F pcap -w mergecap-us.pcap tcpdump-us.pcap tcpdump-s96.pcap
reordercap tshark.pcapng reordercap.pcapng >/dev/null
cat tshark.pcapng dumpcap-comment.pcapng > cat-2sections.pcapng
tshark -r tcpdump-us.pcap -x 2>/dev/null > hex.txt
text2pcap -q -F pcap hex.txt text2pcap.pcap
text2pcap -q hex.txt text2pcap.pcapng
head -4 hex.txt > hex2.txt
text2pcap -q -F pcap -4 198.18.99.1,198.18.99.2 -u 1000,2000 hex2.txt text2pcap-udpwrap.pcap
rm hex.txt hex2.txt
"$PY" "$HERE/make_be.py" "$OUT"
