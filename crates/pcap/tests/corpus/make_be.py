"""Big-endian and odd files from scapy and python-pcapng, from make.sh's tcpdump-us.pcap."""
import sys
from scapy.all import rdpcap
from scapy.utils import PcapWriter
from pcapng import FileWriter, blocks

out = sys.argv[1]
pkts = rdpcap(f"{out}/tcpdump-us.pcap")

for name, kw in [("scapy-be-us", dict(endianness=">")),
                 ("scapy-be-ns", dict(endianness=">", nano=True)),
                 # scapy writes the header's snaplen but the records whole.
                 ("scapy-caplen-over-snaplen", dict(snaplen=100))]:
    w = PcapWriter(f"{out}/{name}.pcap", linktype=1, sync=True, **kw)
    w.write(pkts)
    w.close()


def pcapng(path, endian, tsresol, tsoffset=None, spb=False):
    shb = blocks.SectionHeader(endianness=endian, options={
        "shb_hardware": "nsring corpus", "shb_os": "Linux", "shb_userappl": "python-pcapng"})
    opts = {"if_name": "veth0", "if_description": "nsrt lab", "if_tsresol": bytes([tsresol])}
    if tsoffset is not None:
        opts["if_tsoffset"] = tsoffset
    shb.new_member(blocks.InterfaceDescription, link_type=1, snaplen=65535, options=opts)
    if not spb:
        shb.new_member(blocks.InterfaceDescription, link_type=101, snaplen=0,
                       options={"if_name": "raw0"})
    with open(path, "wb") as f:
        w = FileWriter(f, shb)
        for i, p in enumerate(pkts):
            data = bytes(p)
            if spb and i % 3 == 0:
                b = shb.new_member(blocks.SimplePacket)
            else:
                raw = i % 4 == 1 and not spb
                b = shb.new_member(blocks.EnhancedPacket, interface_id=1 if raw else 0)
                if raw:
                    data = data[14:]
                b.timestamp = float(p.time) - (tsoffset or 0)
                if i % 2 == 0:
                    b.options["epb_flags"] = 1 if i % 4 == 0 else 2
                    b.options["opt_comment"] = f"packet {i}"
            b.packet_data = data
            w.write_block(b)
        w.write_block(shb.new_member(blocks.InterfaceStatistics, interface_id=0,
                                     timestamp=float(pkts[-1].time),
                                     options={"isb_ifrecv": len(pkts), "isb_ifdrop": 0}))


pcapng(f"{out}/pypcapng-be-us.pcapng", ">", 6)
pcapng(f"{out}/pypcapng-be-ns-spb.pcapng", ">", 9, spb=True)
pcapng(f"{out}/pypcapng-le-bin20-offset.pcapng", "<", 0x80 | 20, tsoffset=1000000000)
