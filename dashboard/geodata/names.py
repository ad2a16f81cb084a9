"""Name material for the synthetic layers (zones, grids, staff, hazards).

Zone stems are real or plausible local place names of Wuxing used only as demo labels;
they do NOT claim to match official zone boundaries."""
from __future__ import annotations

# (Chinese stem, pinyin) per town; the first stem goes to the zone holding the town seat.
ZONE_STEMS: dict[str, list[tuple[str, str]]] = {
    "YH": [("月河", "Yuehe"), ("衣裳街", "Yishangjie"), ("馆驿河头", "Guanyi Hetou"), ("南门", "Nanmen"),
           ("江南工贸", "Jiangnan Gongmao")],
    "CY": [("朝阳", "Chaoyang"), ("红门馆", "Hongmenguan"), ("观凤", "Guanfeng"), ("仓前", "Cangqian")],
    "AS": [("爱山", "Aishan"), ("南园", "Nanyuan"), ("东街", "Dongjie"), ("府庙", "Fumiao")],
    "FY": [("飞英", "Feiying"), ("凤凰", "Fenghuang"), ("劳动路", "Laodonglu"), ("青铜", "Qingtong")],
    "LQ": [("潮音", "Chaoyin"), ("龙溪", "Longxi"), ("白鱼潭", "Baiyutan"), ("新华", "Xinhua")],
    "HD": [("湖东", "Hudong"), ("新风", "Xinfeng"), ("长岛", "Changdao"), ("东白鱼潭", "Dong Baiyutan")],
    "KS": [("康山", "Kangshan"), ("丁莲", "Dinglian"), ("大钱港", "Daqiangang"), ("莲花庄", "Lianhuazhuang")],
    "RHS": [("仁皇山", "Renhuangshan"), ("弁南", "Biannan"), ("太湖路", "Taihulu"), ("西山漾", "Xishanyang")],
    "BH": [("滨湖", "Binhu"), ("长田漾", "Changtianyang"), ("太湖湾", "Taihuwan")],
    "YJB": [("杨家埠", "Yangjiabu"), ("沿山", "Yanshan"), ("鹿山", "Lushan"), ("陈溪", "Chenxi")],
    "HZ": [("环渚", "Huanzhu"), ("吴沈门", "Wushenmen"), ("龙溪港", "Longxigang"), ("西塘", "Xitang")],
    "ZL": [("晟舍", "Shengshe"), ("织里中路", "Zhili Zhonglu"), ("轧村", "Gacun"), ("太湖", "Taihu"),
           ("漾西", "Yangxi"), ("利济", "Liji"), ("大港", "Dagang"), ("旧馆", "Jiuguan"),
           ("秦家港", "Qinjiagang"), ("吴兴大道", "Wuxing Dadao"), ("河西", "Hexi"), ("庙兜", "Miaodou"),
           ("伍浦", "Wupu"), ("义皋", "Yigao"), ("杨溇", "Yanglou"), ("戴山", "Daishan"), ("联漾", "Lianyang"),
           ("常乐", "Changle"), ("珍贝", "Zhenbei"), ("路村", "Lucun"), ("湖州大道", "Huzhou Dadao")],
    "BLD": [("八里店", "Balidian"), ("尹家圩", "Yinjiawei"), ("升山", "Shengshan"), ("潘店", "Pandian"),
            ("钱山漾", "Qianshanyang"), ("移沿山", "Yiyanshan")],
    "DL": [("东林", "Donglin"), ("泉益", "Quanyi"), ("青山", "Qingshan"), ("山口", "Shankou"), ("保健", "Baojian")],
    "DX": [("埭溪", "Daixi"), ("上强", "Shangqiang"), ("老虎潭", "Laohutan"), ("大冲", "Dachong"),
           ("茅坞", "Maowu")],
    "MX": [("妙西", "Miaoxi"), ("弁山", "Bianshan"), ("杼山", "Zhushan"), ("肇村", "Zhaocun")],
    "DC": [("道场", "Daochang"), ("红里山", "Honglishan"), ("菰城", "Gucheng"), ("浦南", "Punan")],
}

DIRECTION_SUFFIX = [("东", "East"), ("西", "West"), ("南", "South"), ("北", "North")]

SURNAMES = list("沈王陈张李钱朱吴徐周杨姚费邱潘俞施闵凌莫蒋孙胡金郑丁顾严沙嵇邵茅蔡韦钮")
GIVEN = list("建国伟明华红芳丽军勇杰强英敏燕萍斌刚平海峰涛霞静宏春晓林娟文新志俊慧佳琴雪梅荣辉")

# syllables for village / community names
PLACE_A = list("新东西南北大小上下前后高长青黄白石沙竹桑荷金银清太兴永安福庆同双塘")
PLACE_B = list("港桥湾浜塘山庄漾兜圩埭溪墩田林坝河湖洋园苑里坊")
# their pinyin, for the English names of villages and communities (none of PLACE_B starts with a vowel, so two
# syllables join without an apostrophe)
PLACE_PINYIN = dict(zip(
    PLACE_A + PLACE_B,
    "xin dong xi nan bei da xiao shang xia qian hou gao chang qing huang bai shi sha zhu sang he jin yin qing tai "
    "xing yong an fu qing tong shuang tang "
    "gang qiao wan bang tang shan zhuang yang dou wei dai xi dun tian lin ba he hu yang yuan yuan li fang".split()))


def place_en(name: str) -> str:
    """The pinyin of a village / community name of PLACE_A + PLACE_B (新港 → Xingang)."""
    return "".join(PLACE_PINYIN[c] for c in name).capitalize()

HAZCHEM_SUFFIX = ["化工仓储有限公司", "化学品仓库", "危化品经营部", "涂料仓库", "溶剂储存点", "化工贸易公司"]
GAS_PREFIX = ["中石化", "中石油", "中海油", ""]
SANHEYI_SUFFIX = ["童装加工坊", "服饰家庭作坊", "绣花加工点", "童装印花厂", "羊毛衫加工坊"]
CONSTRUCTION_SUFFIX = ["安置房项目工地", "道路改造工程", "地块商品房工地", "学校新建工程", "厂房扩建工程"]
