"""An existing Open311 client from PyPI (civicbot 0.4, which can write) lists the services, posts a request and
reads it back from a real server on localhost — the whole GeoReport v2 round trip through someone else's code."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from shapely.geometry import shape


def test_civicbot_lists_posts_and_reads_back(demo_app):
    from civicbot.open311 import Open311Client
    from civicbot.registry import Endpoint

    client = Open311Client(Endpoint(id="wuxing", name="吴兴区", base_url=f"{demo_app.url}/open311/v2", write=True))
    # the spec leaves reads open; this dashboard is private by default: its reads take the api_key too
    base_params = client._params
    client._params = lambda *a, **kw: {**base_params(*a, **kw), "api_key": "test-token"}
    services = client.list_services()
    with urllib.request.urlopen(f"{demo_app.url}/api/v1/catalogue") as resp:
        catalogue = json.loads(resp.read())
    codes = {c["service_code"] for c in catalogue["categories"]}
    assert {s["service_code"] for s in services} == codes
    fire = next(s for s in services if "消防" in s["service_name"])

    grids = urllib.request.Request(f"{demo_app.url}/api/geo/grids.json", headers={"Authorization": "Bearer test-token"})
    with urllib.request.urlopen(grids) as resp:
        grid = json.loads(resp.read())["features"][200]
    point = shape(grid["geometry"]).representative_point()
    sent = client.create_request(fire["service_code"], dry_run=False, confirm="SEND", api_key="test-token",
                                 lat=point.y, lng=point.x, description="楼道堆放杂物 <堵塞> 消防通道",
                                 address_string="测试路8号")
    request_id = sent.response[0]["service_request_id"]
    back = client.get_request(request_id)
    assert back["service_request_id"] == request_id
    assert back["service_code"] == fire["service_code"]
    assert back["description"] == "楼道堆放杂物 <堵塞> 消防通道"
    assert back["status"] == "open" and "已上报" in back["status_notes"]
    assert back["address_id"] == grid["properties"]["code"]  # placed in its grid automatically

    # a write without the key is refused by the server, with the spec's error form
    refused = client.build_request(fire["service_code"], lat=point.y, lng=point.x, description="无密钥")
    req = urllib.request.Request(refused.url, data=urllib.parse.urlencode(refused.form).encode(), method="POST")
    try:
        urllib.request.urlopen(req)
        raise AssertionError("a post without api_key must be refused")
    except urllib.error.HTTPError as err:
        body = json.loads(err.read())
        assert err.code in (401, 403) and body[0]["code"] == err.code and "api_key" in body[0]["description"]
