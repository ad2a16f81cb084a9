"""Chinese text for the demo: road names, description templates, lifecycle notes. Data only."""
from __future__ import annotations

ROADS = (
    "人民路", "红旗路", "凤凰路", "青铜路", "仁皇山路", "环城东路", "环城西路", "劳动路", "北街", "衣裳街",
    "湖州大道", "吴兴大道", "苕溪东路", "苕溪西路", "二环东路", "二环南路", "西山漾路", "龙溪路", "骆驼桥路",
    "东街", "南街", "浙北大道", "金盖山路", "太湖路", "滨湖大道", "杨家埠路", "八里店路", "升山路", "东林路",
    "埭溪大道", "妙西路", "道场路", "青山路", "织里南路", "织里北路", "珍贝路", "大河路", "康泰路", "富民路",
    "栋梁路", "吴兴路", "阿祥路", "中华东路", "利济路", "长安路", "晟舍路", "轧村路", "漾西路", "太湖大道",
    "马军巷", "潮音桥路", "月河街", "爱山路", "飞英路", "龙泉路", "湖东路", "康山路", "环渚路", "朝阳路",
    "南浔路", "白鱼潭路", "清源路", "外环东路", "丁莲芳路", "工业大道", "创业路", "振兴路", "兴业路",
)

SHOPS = ("童装加工作坊", "出租房", "小餐馆", "五金店", "物流仓库", "电动车维修店", "小超市", "棋牌室", "废品收购站",
         "汽修店", "服装辅料店", "印花厂", "绣花作坊", "民宿", "建材店")

# (category, subcategory or "*") -> templates. Slots: {addr} {shop} {n} {m}
TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("safety.fire", "sanheyi"): (
        "{addr}一家{shop}存在“三合一”现象，员工住宿与生产区未分隔",
        "巡查发现{addr}{shop}楼上住人、楼下生产，{n}名员工夜间留宿",
        "{addr}{shop}生产、仓储、住宿混用，疏散通道不足",
    ),
    ("safety.fire", "blocked_exit"): (
        "{addr}{shop}消防通道被布料堆放堵塞",
        "{addr}楼道安全出口上锁，堆放杂物约{n}平方米",
    ),
    ("safety.fire", "wiring"): (
        "{addr}{shop}电线私拉乱接，插排串接{n}个",
        "{addr}{shop}车间照明线路老化裸露",
    ),
    ("safety.fire", "ebike_charging"): (
        "{addr}楼道内电动车违规充电{n}辆",
        "{addr}{shop}门口飞线充电，存在火灾隐患",
    ),
    ("safety.fire", "extinguisher"): (
        "{addr}{shop}灭火器过期{n}具",
        "{addr}{shop}未配备灭火器材",
    ),
    ("safety.hazchem", "*"): (
        "{addr}疑似违规存放危险化学品约{n}桶",
        "{addr}{shop}私存油漆、稀释剂等易燃品",
        "{addr}发现无证经营危化品，现场有刺激性气味",
    ),
    ("safety.production", "*"): (
        "{addr}{shop}设备无防护罩，操作不规范",
        "{addr}建筑工地脚手架未设安全网",
        "{addr}{shop}液化气钢瓶{n}只与明火同室",
    ),
    ("dispute.civil", "neighbour"): (
        "{addr}两户因排水问题发生邻里纠纷",
        "{addr}楼上漏水引发邻里矛盾，双方争执",
        "{addr}因公共楼道堆物发生口角",
    ),
    ("dispute.civil", "family"): (
        "{addr}一户家庭因赡养老人问题产生矛盾",
        "{addr}夫妻因家庭琐事争吵，请求调解",
    ),
    ("dispute.civil", "land"): (
        "{addr}村民因宅基地界址发生争议",
        "{addr}两户因承包地边界发生纠纷",
    ),
    ("dispute.civil", "property_mgmt"): (
        "{addr}小区业主与物业因停车费发生纠纷",
        "{addr}小区电梯维修费用分摊引发矛盾",
    ),
    ("dispute.civil", "traffic"): (
        "{addr}路口电动车与轿车刮擦，双方就赔偿协商不成",
        "{addr}交通事故赔偿纠纷，申请现场调解",
    ),
    ("dispute.labour", "*"): (
        "{addr}{shop}拖欠{n}名工人工资约{m}万元",
        "{addr}{shop}老板与员工因工资结算发生纠纷",
        "{addr}外来务工人员{n}人反映加工费未结清",
    ),
    ("construction.illegal", "wall_opening"): (
        "{addr}临街住宅破墙开门用于经营",
        "{addr}擅自破墙开门开设{shop}",
    ),
    ("construction.illegal", "*"): (
        "{addr}擅自搭建彩钢棚约{n}平方米",
        "{addr}屋顶违章加层，正在施工",
        "{addr}违法占用集体土地搭建仓库",
    ),
    ("environment.pollution", "*"): (
        "{addr}{shop}废水直排河道",
        "{addr}夜间施工噪声扰民",
        "{addr}露天焚烧垃圾，烟雾较大",
        "{addr}河边倾倒建筑垃圾约{n}车",
    ),
    ("order.public", "*"): (
        "{addr}有人聚集赌博",
        "{addr}商铺夜间被盗，损失约{m}千元",
        "{addr}发现可疑人员多次徘徊",
        "{addr}群众反映遭遇电信诈骗",
    ),
    ("order.key_persons", "*"): (
        "{addr}重点人员情绪不稳定，需加强走访",
        "{addr}社区矫正人员未按时报到",
    ),
    ("population.migrant", "*"): (
        "{addr}出租房新入住{n}名外来人员未登记",
        "{addr}{shop}员工{n}人未办理居住登记",
        "{addr}群租房人员信息需更新",
    ),
    ("service.ebike_plate", "*"): (
        "{addr}{n}辆电动车未上牌，协助办理",
        "{addr}老人行动不便，申请上门上牌",
        "{addr}企业员工电动车集中上牌{n}辆",
    ),
    ("petition.letters", "*"): (
        "{addr}居民来访反映拆迁补偿问题",
        "{addr}群众网上信访反映小区配套不到位",
        "{addr}村民联名来信反映道路硬化问题",
    ),
    ("city.sanitation", "*"): (
        "{addr}垃圾堆放未及时清运",
        "{addr}垃圾分类投放不规范",
        "{addr}公厕设施损坏",
    ),
    ("city.appearance", "*"): (
        "{addr}{shop}出店经营占道",
        "{addr}流动摊贩占道经营",
        "{addr}车辆乱停乱放堵塞通道",
        "{addr}违规张贴小广告",
    ),
    ("facility.road", "*"): (
        "{addr}路面破损坑洼",
        "{addr}路灯不亮{n}盏",
        "{addr}窨井盖缺失，存在安全隐患",
        "{addr}雨后积水排水不畅",
    ),
    ("market.regulation", "*"): (
        "{addr}{shop}无证经营",
        "{addr}小餐馆后厨卫生条件差",
        "{addr}销售疑似假冒伪劣商品",
    ),
}

NOTES = {
    "reported": ("网格员巡查发现并上报", "通过掌上基层上报", "群众反映，网格员核实后上报", "热线转办"),
    "onsite_handled": ("现场督促整改完毕", "当场处置，已拍照留档", "会同部门下沉人员现场处置", "现场调解达成一致"),
    "routed": ("镇街流转至片区工作站", "流转至责任站所", "镇街综治中心分流处置"),
    "in_progress": ("已安排人员处置", "责任单位已接单", "正在处置中"),
    "handled": ("整改完毕，待核实", "处置完成，反馈网格员", "已办结，待现场核实"),
    "escalated": ("镇街无法处置，上报区信息中心", "事态较重，提请区信息中心协调"),
    "assigned": ("区信息中心交办", "交办责任部门限期处置"),
    "verified": ("网格员现场核实，整改到位", "现场核实无误", "回访当事人满意"),
    "closed": ("结案", "已结案归档"),
}
